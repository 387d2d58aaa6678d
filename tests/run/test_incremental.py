"""Incremental reruns on a folder: the catalogue and feature store (issue 15)."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import imgclust
from imgclust.io import KILL_ENV
from imgclust.run.catalog import Catalog
from imgclust.run.store import CATALOG_FILE, STORE_FILE

ARGS = dict(features="pixels:8", method="kmeans", k=3, seed=0)


def _add(root: Path, names: list[str], rgb=(220, 30, 30), seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    for n in names:
        a = np.clip(np.array(rgb) + rng.normal(0, 12, (24, 24, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(a).save(root / n)


def _ids(out: Path) -> list[str]:
    with open(out / "clusters.csv", newline="") as f:
        return [r["id"] for r in csv.DictReader(f)]


def _catalog(out: Path) -> Catalog:
    (d,) = (out / "cache").glob("features-*")
    return Catalog(d / CATALOG_FILE)


def test_unchanged_rerun_decodes_nothing(tmp_path, color_folder):
    root, _ = color_folder
    out = tmp_path / "run"
    a = imgclust.run(root, out, **ARGS)
    assert a.summary["features"]["cache"]["decoded"] == 18
    b = imgclust.run(root, out, **ARGS)
    assert b.summary["features"]["cache"]["decoded"] == 0
    assert b.summary["features"]["cache"]["reused_images"] == 18
    np.testing.assert_array_equal(a.features_.X, b.features_.X)
    np.testing.assert_array_equal(a.labels_, b.labels_)


def test_rerun_after_adding_3_files_decodes_exactly_3(tmp_path, color_folder):
    root, _ = color_folder
    out = tmp_path / "run"
    imgclust.run(root, out, **ARGS)
    _add(root / "red", ["new_0.png", "new_1.png", "new_2.png"])
    res = imgclust.run(root, out, **ARGS, overwrite=True)
    stats = res.summary["features"]["cache"]
    assert stats["decoded"] == 3 and stats["reused_images"] == 18
    assert len(res.ids) == 21 and "red/new_1.png" in _ids(out)
    fresh = imgclust.run(root, tmp_path / "fresh", **ARGS)  # same matrix as a run from scratch
    np.testing.assert_array_equal(res.features_.X, fresh.features_.X)
    assert list(res.ids) == list(fresh.ids)


def test_deleted_files_drop_out(tmp_path, color_folder):
    root, _ = color_folder
    out = tmp_path / "run"
    imgclust.run(root, out, **ARGS)
    (root / "red" / "red_0.png").unlink()
    (root / "blue" / "blue_3.png").unlink()
    res = imgclust.run(root, out, **ARGS, overwrite=True)
    assert res.summary["features"]["cache"]["removed"] == 2
    assert res.summary["features"]["cache"]["decoded"] == 0
    ids = _ids(out)
    assert len(ids) == 16 and "red/red_0.png" not in ids and "blue/blue_3.png" not in ids
    cat = _catalog(out)
    assert cat.count() == 16 and cat.lookup("red/red_0.png") is None
    cat.close()


def test_changed_file_is_decoded_again_and_copies_share_a_row(tmp_path, color_folder):
    root, _ = color_folder
    out = tmp_path / "run"
    imgclust.run(root, out, **ARGS)
    _add(root / "green", ["green_0.png"], rgb=(30, 40, 220), seed=7)  # content replaced
    (root / "copy.png").write_bytes((root / "red" / "red_1.png").read_bytes())
    res = imgclust.run(root, out, **ARGS, overwrite=True)
    assert res.summary["features"]["cache"]["decoded"] == 2
    i, j = res.ids.index("copy.png"), res.ids.index("red/red_1.png")
    np.testing.assert_array_equal(res.features_.X[i], res.features_.X[j])
    cat = _catalog(out)
    assert cat.n_rows() == 18 + 1  # the replaced green_0 got a row, the copy did not
    cat.close()


def test_failures_are_catalogued_with_their_reason(tmp_path, color_folder):
    root, _ = color_folder
    (root / "notes.png").write_text("not an image")
    out = tmp_path / "run"
    imgclust.run(root, out, **ARGS)
    res = imgclust.run(root, out, **ARGS)  # the failure is remembered, not read again
    assert res.summary["features"]["cache"]["decoded"] == 0
    assert [Path(f["path"]).name for f in res.summary["skipped"]] == ["notes.png"]
    cat = _catalog(out)
    (row,) = [r for r in cat.files() if r.status == "failed"]
    assert row.id == "notes.png" and "text" in row.reason and row.hash
    cat.close()


@pytest.mark.parametrize("stage", ["batch:3", "store:3"])
def test_killed_run_leaves_a_consistent_catalogue(tmp_path, make_colors, stage):
    """SIGKILL after batch 3's commit, or after its rows were appended but before the commit:
    the catalogue holds exactly the committed batches, the store exactly their rows (cut on
    reopening), and the rerun decodes only the rest and gives the uninterrupted result."""
    root = tmp_path / "imgs"
    make_colors(root, n_per=10)  # 30 files, batches of 4
    out = tmp_path / "run"
    args = ["-f", "pixels:8", "-m", "kmeans", "-k", "3", "--batch-size", "4", "-q",
            "--no-report"]
    env = {**os.environ, KILL_ENV: stage}
    p = subprocess.run([sys.executable, "-m", "imgclust.cli", "run", str(root), "-o", str(out),
                        *args], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == -9, p.stderr
    cat = _catalog(out)
    committed = 12 if stage == "batch:3" else 8
    assert cat.count() == committed and cat.count("ok") == committed
    assert cat.n_rows() == committed and int(cat.get_meta("dim")) == 8 * 8 * 3
    rows = [cat.lookup(r.id)[8] for r in cat.files()]
    assert sorted(rows) == list(range(committed))
    store = next((out / "cache").glob("features-*")) / STORE_FILE
    extra = 4 if stage == "store:3" else 0  # the uncommitted batch's rows are still there
    assert store.stat().st_size == (committed + extra) * 8 * 8 * 3 * 4
    cat.close()
    env.pop(KILL_ENV)
    p = subprocess.run([sys.executable, "-m", "imgclust.cli", "run", str(root), "-o", str(out),
                        *args], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["features"]["cache"]["decoded"] == 30 - committed
    assert store.stat().st_size == 30 * 8 * 8 * 3 * 4  # no duplicated rows
    ref = tmp_path / "ref"
    subprocess.run([sys.executable, "-m", "imgclust.cli", "run", str(root), "-o", str(ref),
                    *args], check=True, capture_output=True, timeout=120)
    assert (out / "clusters.csv").read_bytes() == (ref / "clusters.csv").read_bytes()


def test_cli_rerun_with_overwrite_reads_only_new_files(tmp_path, color_folder):
    root, _ = color_folder
    out = tmp_path / "run"
    args = ["-f", "pixels:8", "-m", "kmeans", "-k", "3", "-q", "--no-report"]
    cmd = [sys.executable, "-m", "imgclust.cli", "run", str(root), "-o", str(out), *args]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    _add(root / "blue", ["b_new.png"], rgb=(30, 40, 220))
    p = subprocess.run([*cmd, "--overwrite"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["features"]["cache"]["decoded"] == 1 and summary["n_images"] == 19


def test_reading_bar_moves_per_image_and_ends_at_n_of_n(tmp_path, color_folder, monkeypatch):
    """Issue 10: the bar moves per image (not per batch) and counts skipped files."""
    from imgclust.run import extract

    root, _ = color_folder
    (root / "broken.png").write_bytes(b"\x89PNG not really")
    calls: list[tuple[int | None, list[int]]] = []

    class Bar:
        def __init__(self, total=None, **kw):
            self.steps: list[int] = []
            calls.append((total, self.steps))

        def update(self, n=1):
            self.steps.append(n)

        def close(self):
            pass

    monkeypatch.setattr(extract, "progress_bar", lambda enabled: Bar)
    imgclust.run(root, tmp_path / "run", **ARGS, batch_size=8, progress=True)
    total, steps = calls[0]
    assert total == 19 and sum(steps) == 19 and set(steps) == {1}  # 18 images + 1 skipped
