"""The command line end to end, in-process through ``imgclust.cli.main`` (the ``imgclust``
script's entry point, which maps errors to exit codes) and once as a real subprocess."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from imgclust.cli import main

FAST = ["-f", "pixels", "-m", "kmeans", "-k", "10", "-q", "--no-report"]


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``imgclust ARGS``; returns (exit code, stdout, stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_run_on_digits_writes_the_run_folder(capsys, tmp_path):
    out = tmp_path / "run"
    code, stdout, stderr = cli(capsys, "run", "dataset:digits", "-o", str(out), *FAST)
    assert code == 0, stderr
    assert "1797 images from dataset:digits" in stdout and f"written to {out}" in stdout
    rows = list(csv.DictReader(open(out / "clusters.csv")))
    assert len(rows) == 1797 and {r["cluster"] for r in rows} == {str(i) for i in range(10)}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_clusters"] == 10 and 0.75 < summary["metrics"]["acc"] < 0.85
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["state"] == "done" and manifest["config"]["method"] == "kmeans"
    # the same command again resumes; another method is refused (exit 1) without --overwrite
    code, _, stderr = cli(capsys, "run", "dataset:digits", "-o", str(out), *FAST)
    assert code == 0, stderr
    code, _, stderr = cli(capsys, "run", "dataset:digits", "-o", str(out), *FAST[:2], "-m", "gmm",
                          "-k", "10", "-q", "--no-report")
    assert code == 1 and "other settings" in stderr and "--overwrite" in stderr


def test_refused_non_empty_out_exits_1(capsys, tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    code, _, stderr = cli(capsys, "run", "dataset:digits", "-o", str(tmp_path), *FAST)
    assert code == 1 and "not empty" in stderr and stderr.count("\n") == 1  # one line, no trace
    code, _, stderr = cli(capsys, "run", "dataset:digits", "-o", str(tmp_path), *FAST, "--overwrite")
    assert code == 1 and "refusing" in stderr
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


@pytest.mark.parametrize("args,message", [
    (["run", "dataset:digits", "-o", "{out}", "-m", "nope"], "valid names"),
    (["run", "dataset:digits", "-o", "{out}", "-f", "pixelz"], "valid names"),
    (["run", "dataset:digits", "-o", "{out}", "-k", "ten", "-f", "pixels", "-m", "kmeans"],
     "positive integer"),
    (["run", "dataset:digits", "-o", "{out}", "--k-range", "2-9"], "2:15"),
    (["run", "dataset:digits", "-o", "{out}", "--export", "zip"], "export mode"),
    (["run", "dataset:digits", "-o", "{out}", "--no-such-option"], "No such option"),
    (["run", "dataset:digits"], "Missing option"),
    (["run", "dataset:nope", "-o", "{out}", "-f", "pixels", "-m", "kmeans"], "unknown dataset"),
])
def test_usage_errors_exit_2(capsys, tmp_path, args, message):
    out = tmp_path / "run"
    code, _, stderr = cli(capsys, *[a.format(out=out) for a in args])
    assert code == 2 and message in stderr
    assert not out.exists() or not any(out.iterdir())  # nothing written


def test_missing_source_exits_1(capsys, tmp_path):
    code, _, stderr = cli(capsys, "run", str(tmp_path / "nowhere"), "-o", str(tmp_path / "r"), *FAST)
    assert code == 1 and "no such file or folder" in stderr


def test_compare_two_methods(capsys, tmp_path):
    out = tmp_path / "cmp"
    code, stdout, stderr = cli(capsys, "compare", "dataset:digits", "-o", str(out), "-f", "pixels",
                               "-k", "10", "-m", "kmeans", "-m", "agglomerative", "-q",
                               "--no-report")
    assert code == 0, stderr
    assert "agreement (ARI)" in stdout
    data = json.loads((out / "compare.json").read_text())
    assert [r["method"] for r in data["table"]] == ["kmeans", "agglomerative"]
    assert all(r["k"] == 10 and r["acc"] > 0.7 for r in data["table"])
    ari = data["agreement"]["ari"]
    assert ari[0][0] == ari[1][1] == 1.0 and ari[0][1] == ari[1][0] and 0.3 < ari[0][1] < 1
    header = (out / "compare.csv").read_text().splitlines()[0]
    assert header == "id,kmeans,agglomerative"


def test_bench_json_rows(capsys):
    code, stdout, stderr = cli(capsys, "bench", "dataset:digits", "--json", "-f", "pixels",
                               "-m", "kmeans", "-m", "agglomerative", "--no-default")
    assert code == 0, stderr
    rows = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert [(r["features"], r["method"]) for r in rows] == [("pixels", "kmeans"),
                                                             ("pixels", "agglomerative")]
    base = rows[0]
    assert base["baseline"] and base["k"] == 10 and base["k_from"] == "given"
    assert 0.75 < base["acc"] < 0.85  # scikit-learn's k-means on raw digits
    assert all(0 <= r["nmi"] <= 1 and r["seconds"] > 0 and r["n"] == 1797 for r in rows)
    assert not any("peak_mb" in r for r in rows)  # not traced unless asked: it slows the timing


def test_bench_memory_traces_peak(capsys):
    code, stdout, stderr = cli(capsys, "bench", "dataset:digits", "--json", "-f", "pixels",
                               "-m", "kmeans", "--no-default", "--memory")
    assert code == 0, stderr
    (row,) = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert row["peak_mb"] > 0.5  # at least the 1,797 x 64 float32 pixel matrix and its copies


def test_bench_markdown_table(capsys):
    code, stdout, stderr = cli(capsys, "bench", "dataset:digits", "--markdown", "-f", "pixels:4",
                               "-m", "kmeans", "-m", "hdbscan", "--no-default", "--seeds", "2")
    assert code == 0, stderr
    table = [line for line in stdout.splitlines() if line.startswith("|")]
    assert table[0].split("|")[4:9] == [" k ", " ACC ", " NMI ", " ARI ", " noise "]
    base, kmeans, hdb = (line.split(" | ") for line in table[2:])
    assert base[1:3] == ["pixels", "kmeans"]  # the k-means-on-pixels baseline, same run
    assert kmeans[3] == "10 (given)" and kmeans[7] == "0%"
    assert " ± " in kmeans[4] and 0.5 < float(kmeans[4].split(" ± ")[0]) < 0.95
    assert hdb[3].endswith("(none)") and hdb[7] != "0%"  # HDBSCAN leaves noise on digits


def test_export_move_and_undo(capsys, color_folder, tmp_path):
    root, _ = color_folder
    before = sorted(p.relative_to(root) for p in root.rglob("*.png"))
    out = tmp_path / "run"
    code, _, stderr = cli(capsys, "run", str(root), "-o", str(out), "-f", "pixels:8", "-m", "kmeans",
                          "-k", "3", "--export", "move", "-q", "--no-report")
    assert code == 0, stderr
    assert not list(root.rglob("*.png")) and len(list((out / "clusters").rglob("*.png"))) == 18
    code, stdout, _ = cli(capsys, "undo", str(out))
    assert code == 0 and "restored 18 files, 0 already in place, 0 missing" in stdout
    assert sorted(p.relative_to(root) for p in root.rglob("*.png")) == before
    code, _, stderr = cli(capsys, "undo", str(out))
    assert code == 1 and "nothing to undo" in stderr


def test_methods_lists_the_registries(capsys):
    code, stdout, _ = cli(capsys, "methods")
    assert code == 0
    for name in ("pixels", "pca", "kmeans", "gmm", "hdbscan", "dbscan", "spectral"):
        assert name in stdout


def test_installed_script(tmp_path):
    """The ``imgclust`` console script itself (subprocess): exit codes reach the shell."""
    script = Path(sys.executable).with_name("imgclust")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "imgclust.cli"]
    ok = subprocess.run([*cmd, "methods"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "kmeans" in ok.stdout
    bad = subprocess.run([*cmd, "run", "-o", str(tmp_path / "r"), "-m", "nope"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown clustering method 'nope'" in bad.stderr


def test_an_image_over_pillows_limit_is_one_skip_line_not_a_python_warning(tmp_path):
    """Pillow warns on opening an image over its pixel limit, then imgclust refuses the file
    itself: the terminal shows the skip and its reason, not a raw DecompressionBombWarning."""
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        Image.new("RGB", (16, 16), (60 * i, 0, 0)).save(folder / f"ok{i}.png")
    # 10,000 x 10,000: over Pillow's warning limit, under its error limit (a 1-bit PNG of 12 KB)
    Image.new("1", (10_000, 10_000)).save(folder / "huge.png")
    script = Path(sys.executable).with_name("imgclust")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "imgclust.cli"]
    res = subprocess.run([*cmd, "run", str(folder), "-o", str(tmp_path / "r"), "-f", "pixels:8",
                          "-m", "kmeans", "-k", "2", "--no-report"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    both = res.stdout + res.stderr
    assert "huge.png" in both and "too large" in both
    assert "DecompressionBombWarning" not in both
