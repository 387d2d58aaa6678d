"""imgclust recluster: a new k on cached features, nothing decoded again (issue 10)."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import imgclust
from imgclust.errors import ConfigError, RunDirError


@pytest.fixture
def run_dir(tmp_path) -> Path:
    from sklearn.datasets import load_digits

    d = load_digits()
    np.savez(tmp_path / "d.npz", images=d.images[:300].astype(np.float32), labels=d.target[:300])
    imgclust.run(tmp_path / "d.npz", tmp_path / "r", features="pixels", method="kmeans", k=3)
    return tmp_path / "r"


def test_recluster_changes_k_without_reading_images(run_dir, monkeypatch):
    import imgclust.sources as sources

    def no_reading(*a, **kw):
        raise AssertionError("recluster must not decode images")

    monkeypatch.setattr(sources.Source, "iter_batches", no_reading)
    res = imgclust.recluster(run_dir, k=5)
    assert res.clustering.n_clusters == 5
    with open(run_dir / "clusters.csv", newline="") as f:
        assert [int(r["cluster"]) for r in csv.DictReader(f)] == res.labels_.tolist()
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["n_clusters"] == 5 and s["k"]["criterion"] == "given"
    assert "acc" in s["metrics"]  # the array's labels still score it
    # the saved model now predicts the new numbering
    back = imgclust.load(run_dir)
    assert back.labels_.tolist() == res.labels_.tolist()
    assert type(back.clusterer_).__name__ == "KMeans" and back.clusterer_.n_clusters == 5


def test_recluster_with_another_method_and_auto_k(run_dir):
    res = imgclust.recluster(run_dir, k="auto", method="agglomerative", k_range=(2, 6))
    assert res.summary["method"]["name"] == "agglomerative"
    assert 2 <= res.clustering.n_clusters <= 6
    assert res.summary["k"]["criterion"] == "silhouette"


def test_recluster_refuses_bad_options_before_touching_the_run(run_dir):
    before = (run_dir / "clusters.csv").read_bytes()
    with pytest.raises(ConfigError):
        imgclust.recluster(run_dir, k="abc")
    with pytest.raises(ConfigError):
        imgclust.recluster(run_dir, method="nosuch")
    assert (run_dir / "clusters.csv").read_bytes() == before


def test_recluster_of_a_non_run_is_one_error(tmp_path):
    with pytest.raises(RunDirError):
        imgclust.recluster(tmp_path / "missing", k=3)


def test_cli_recluster_rewrites_the_report(run_dir):
    r = subprocess.run([sys.executable, "-m", "imgclust.cli", "recluster", str(run_dir), "-k", "4",
                        "-q"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (run_dir / "report.html").exists()
    assert "clusters: 4" in r.stdout
