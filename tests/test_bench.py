"""``imgclust.bench``: the feature x method matrix, one room above the pipeline."""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from imgclust.bench import BASELINE, aggregate, bench
from imgclust.errors import ConfigError


def test_bench_is_no_longer_inside_evaluate():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("imgclust.evaluate.bench")


def test_bench_rows_start_with_the_baseline_and_aggregate_over_seeds():
    rows = bench(["dataset:digits"], features=["pixels:4"], methods=["kmeans"], seeds=[0, 1],
                 include_default=False)
    # pixels/kmeans (the baseline) and pixels:4/kmeans, per seed
    assert [(r["features"], r["method"], r["seed"]) for r in rows] == [
        (*BASELINE, 0), ("pixels:4", "kmeans", 0), (*BASELINE, 1), ("pixels:4", "kmeans", 1)]
    assert all(r["k"] == 10 and r["k_from"] == "given" and r["n"] == 1797 for r in rows)
    agg = aggregate(rows)
    assert [(a["features"], a["seeds"]) for a in agg] == [("pixels", 2), ("pixels:4", 2)]
    accs = [r["acc"] for r in rows if r["features"] == "pixels"]
    assert agg[0]["acc"] == pytest.approx(np.mean(accs))
    assert agg[0]["acc_sd"] == pytest.approx(np.std(accs))


def test_bench_refuses_a_source_without_labels(tmp_path):
    np.savez(tmp_path / "x.npz", images=np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(ConfigError, match="bench needs labels"):
        bench([str(tmp_path / "x.npz")], features=["pixels"], methods=["kmeans"])
