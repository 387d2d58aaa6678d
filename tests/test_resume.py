"""Crash safety and resume of run directories (issue 5).

Real ``imgclust run`` processes are killed with SIGKILL, at exact stages through the
``IMGCLUST_TEST_KILL_AT`` hook (imgclust.io.kill_point) and after plain delays. Each time the run
directory must be as before (absent, or holding nothing but temporary files) or resumable, and
running again must give a clusters.csv byte-identical to an uninterrupted run.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import imgclust
from imgclust.errors import RunDirError
from imgclust.io import KILL_ENV, is_temp_leftover
from imgclust.pipeline import CACHE, CLUSTERS, RUN_JSON

# 450 digits in 9 batches of 50, so that a kill can land between batches
ARGS = dict(features="pixels", method="kmeans", k="10", batch_size=50)
CLI_ARGS = ["-f", "pixels", "-m", "kmeans", "-k", "10", "--batch-size", "50", "-q", "--no-report"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> str:
    """450 of scikit-learn's digits as an .npz source (small, so each killed process is quick)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    path = tmp_path_factory.mktemp("data") / "digits450.npz"
    np.savez(path, images=d.images[:450].astype(np.float32), labels=d.target[:450])
    return str(path)


def cli(*args: str, kill_at: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != KILL_ENV}
    if kill_at:
        env[KILL_ENV] = kill_at
    return subprocess.run([sys.executable, "-m", "imgclust.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_before_or_resumable(out: Path) -> str:
    """The two states a killed run may leave: 'before' (nothing but temp files) or 'resumable'."""
    if not out.exists():
        return "before"
    names = [p.name for p in out.iterdir() if not is_temp_leftover(p.name)]
    if not names:
        return "before"
    state = json.loads((out / RUN_JSON).read_text())["state"]  # run.json is always written first
    assert state in ("running", "done")
    return "resumable"


@pytest.fixture(scope="module")
def reference(tmp_path_factory, digits) -> bytes:
    """clusters.csv of an uninterrupted run."""
    out = tmp_path_factory.mktemp("ref") / "run"
    imgclust.run(digits, out, **ARGS)
    return (out / CLUSTERS).read_bytes()


@pytest.mark.parametrize("stage", ["tmp:run.json", "run-json", "batch:1", "batch:5", "features",
                                   "tmp:clusters.csv", "written"])
def test_killed_run_resumes_to_identical_clusters(stage, tmp_path, reference, digits):
    out = tmp_path / "run"
    proc = cli("run", digits, "-o", str(out), *CLI_ARGS, kill_at=stage)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    state = assert_before_or_resumable(out)
    assert state == ("before" if stage == "tmp:run.json" else "resumable")
    if stage.startswith("batch:"):
        done = int(stage.split(":")[1])
        assert len(list((out / CACHE).glob("features-*/batch-*.npy"))) == done
    # again, same arguments, no --overwrite: resumes
    res = imgclust.run(digits, out, **ARGS)
    assert (out / CLUSTERS).read_bytes() == reference
    assert json.loads((out / RUN_JSON).read_text())["state"] == "done"
    cache = res.summary["features"]["cache"]
    if stage.startswith("batch:"):
        assert cache["reused"] == int(stage.split(":")[1]) and cache["computed"] == 9 - cache["reused"]
    elif stage in ("features", "tmp:clusters.csv", "written"):
        assert cache == {"reused": 9, "computed": 0, "key": cache["key"]}
    assert not [p for p in out.rglob("*") if is_temp_leftover(p.name)]


@pytest.mark.parametrize("delay", [1.0, 2.5])
def test_run_killed_after_a_delay_is_before_or_resumable(delay, tmp_path, reference, digits):
    """Wherever a plain SIGKILL lands (the machine is shared, so the stage varies)."""
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != KILL_ENV}
    p = subprocess.Popen([sys.executable, "-m", "imgclust.cli", "run", digits, "-o",
                          str(out), *CLI_ARGS], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    time.sleep(delay)
    p.kill()
    p.wait(timeout=60)
    assert_before_or_resumable(out)
    proc = cli("run", digits, "-o", str(out), *CLI_ARGS)  # resumed through the CLI
    assert proc.returncode == 0, proc.stderr
    assert (out / CLUSTERS).read_bytes() == reference


def test_same_seed_gives_byte_identical_clusters(tmp_path, reference, digits, make_colors):
    imgclust.run(digits, tmp_path / "a", **ARGS)
    assert (tmp_path / "a" / CLUSTERS).read_bytes() == reference
    # a folder source, k chosen by silhouette, through a reduction step
    root = tmp_path / "imgs"
    make_colors(root, n_per=8)
    for name in ("b", "c"):
        imgclust.run(root, tmp_path / name, features="pixels:8,pca:5", method="kmeans", seed=3)
    assert (tmp_path / "b" / CLUSTERS).read_bytes() == (tmp_path / "c" / CLUSTERS).read_bytes()


def test_other_inputs_are_refused_unless_overwrite(tmp_path, color_folder):
    root, _ = color_folder
    out = tmp_path / "run"
    imgclust.run(root, out, features="pixels:8", method="kmeans", k=3)
    (root / "red" / "red_0.png").write_bytes((root / "red" / "red_1.png").read_bytes() + b"\0")
    with pytest.raises(RunDirError, match="other inputs.*--overwrite"):
        imgclust.run(root, out, features="pixels:8", method="kmeans", k=3)
    imgclust.run(root, tmp_path / "d", features="pixels:8", method="kmeans", k=3)
    with pytest.raises(RunDirError, match=r"other settings \(k '3' -> '4'\)"):
        imgclust.run(root, tmp_path / "d", features="pixels:8", method="kmeans", k=4)
    (out / "notes.txt").write_text("mine")
    res = imgclust.run(root, out, features="pixels:8", method="kmeans", k=3, overwrite=True)
    assert res.summary["features"]["cache"]["computed"] == 1  # old cache not trusted
    assert (out / "notes.txt").read_text() == "mine"  # overwrite removes only imgclust's files
    assert len(list((out / CACHE).iterdir())) == 1  # the old run's cache is pruned


def test_moved_folder_resumes_from_cache(tmp_path, color_folder):
    root, _ = color_folder
    out = tmp_path / "run"
    imgclust.run(root, out, features="pixels:8", method="kmeans", k=3)
    first = (out / CLUSTERS).read_bytes()
    moved = root.rename(tmp_path / "elsewhere")
    res = imgclust.run(moved, out, features="pixels:8", method="kmeans", k=3)
    assert res.summary["features"]["cache"]["reused"] == 1
    assert (out / CLUSTERS).read_bytes() == first


def test_other_version_warns_and_recomputes(tmp_path, caplog, monkeypatch, digits):
    from imgclust.run import extract, pipeline, rundir

    out = tmp_path / "run"
    with monkeypatch.context() as m:
        for mod in (pipeline, rundir, extract):  # the manifest, the resume check, the cache key
            m.setattr(mod, "__version__", "0.0.1")
        imgclust.run(digits, out, **ARGS)
    assert json.loads((out / RUN_JSON).read_text())["imgclust_version"] == "0.0.1"
    with caplog.at_level(logging.WARNING, logger="imgclust"):
        res = imgclust.run(digits, out, **ARGS)
    assert "written by imgclust 0.0.1" in caplog.text
    assert res.summary["features"]["cache"]["reused"] == 0


def test_damaged_cache_file_is_recomputed(tmp_path, reference, digits):
    out = tmp_path / "run"
    imgclust.run(digits, out, **ARGS)
    batch = sorted((out / CACHE).glob("features-*/batch-*.npy"))[2]
    batch.write_bytes(batch.read_bytes()[:100])  # truncated, as by a disk fault
    res = imgclust.run(digits, out, **ARGS)
    assert res.summary["features"]["cache"]["computed"] == 1
    assert (out / CLUSTERS).read_bytes() == reference


def test_user_folder_is_refused_even_with_overwrite(tmp_path, digits):
    (tmp_path / "report.html").write_text("my own report")  # a name imgclust also writes
    for overwrite in (False, True):
        with pytest.raises(RunDirError, match="holds no imgclust run"):
            imgclust.run(digits, tmp_path, **ARGS, overwrite=overwrite)
    assert (tmp_path / "report.html").read_text() == "my own report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_cached_features_equal_fresh_ones(tmp_path, digits):
    out = tmp_path / "run"
    a = imgclust.run(digits, out, **ARGS)
    b = imgclust.run(digits, out, **ARGS)
    assert b.summary["features"]["cache"]["reused"] == 9
    np.testing.assert_array_equal(a.features_.X, b.features_.X)
    assert a.features_.X.dtype == b.features_.X.dtype == np.float32
