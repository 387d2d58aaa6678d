"""``imgclust label …`` in a real subprocess: import, propagate, show, next, train, export, undo."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from imgclust.label import LabelStore

from label_fixtures import folder_run


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "imgclust.cli", "label", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return folder_run(tmp_path)[0]


def test_import_propagate_show_train_export_undo(run: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label,note\ndark/dark0.png,dark,x\ndark/dark1.png,dark,\n"
                      "light/light1.png,light,\nlight/light2.png,light,\n", encoding="utf-8")
    p = cli("import", str(run), str(labels))
    assert p.returncode == 0, p.stderr
    assert "imported 4 labels (2 classes)" in p.stdout
    p = cli("propagate", str(run), "--mode", "cluster")
    assert p.returncode == 0, p.stderr
    assert "4 images carry a propagated label" in p.stdout
    p = cli("show", str(run))
    assert p.returncode == 0, p.stderr
    row = next(line for line in p.stdout.splitlines() if "dark" in line)
    assert row.split("│")[1:6] == [" dark  ", "     2 ", "      0 ", "          2 ", "     0 "]
    assert "8 of 8 images labelled" in p.stdout
    p = cli("train", str(run))
    assert p.returncode == 0, p.stderr
    assert "cross-validated accuracy: 1.000 ± 0.000 (2 folds)" in p.stdout
    out = tmp_path / "out"
    p = cli("export", str(run), "--format", "imagefolder", "--out", str(out),
            "--include-propagated", "--min-confidence", "0.6", "-q")
    assert p.returncode == 0, p.stderr
    assert sorted(f.name for f in (out / "light").iterdir()) == [
        "light0.png", "light1.png", "light2.png"]  # the GIF converted; light3 below 0.6
    p = cli("export", str(run), "--out", str(tmp_path / "l.csv"))
    with open(tmp_path / "l.csv", newline="") as f:
        assert [r["source"] for r in csv.DictReader(f)] == ["human"] * 4  # import as a person's
    p = cli("undo", str(run))
    assert p.returncode == 0 and "undone: propagate-" in p.stdout
    assert len(LabelStore(run).current_labels()) == 4


def test_import_with_unknown_ids_is_one_line_and_exit_1(run: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id,label\ndark/dark0.png,dark\nnope.png,x\nmissing.png,y\n")
    p = cli("import", str(run), str(bad))
    assert p.returncode == 1
    assert p.stderr.startswith("error: ") and len(p.stderr.strip().splitlines()) == 1
    assert "2 of 3 ids are not images of the run" in p.stderr and "nothing imported" in p.stderr
    assert "Traceback" not in p.stderr
    assert LabelStore(run).current_labels() == {}
    bad.write_text("name,class\na,b\n")
    p = cli("import", str(run), str(bad))
    assert p.returncode == 1 and "needs a header with the columns id and label" in p.stderr


def test_usage_and_domain_errors(run: Path, tmp_path: Path) -> None:
    p = cli("propagate", str(run), "--mode", "nearest:0%")
    assert p.returncode == 2 and "error: propagation mode 'nearest:0%'" in p.stderr
    p = cli("propagate", str(run))
    assert p.returncode == 2 and "no labels yet" in p.stderr
    p = cli("show", str(tmp_path / "nothing"))
    assert p.returncode == 1 and "no such run directory" in p.stderr
    p = cli("next", str(run), "-n", "3")
    assert p.returncode == 0 and p.stdout.count("representative") == 2 and "far" in p.stdout
