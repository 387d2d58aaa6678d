"""RunConfig: every option parsed and checked once, before any image is read."""
from __future__ import annotations

import pytest

import imgclust
from imgclust.errors import ConfigError
from imgclust.run.config import RunConfig, parse_k, parse_k_range


def test_parse_gives_checked_values():
    cfg = RunConfig.parse(features="pixels:16,pca:10", method="kmeans", k="7", k_range=["3", 9],
                          seed="4", batch_size="32")
    assert cfg.k == 7 and cfg.k_range == (3, 9) and cfg.seed == 4 and cfg.batch_size == 32
    assert cfg.feature_steps == ("pixels:16", "pca:10") and cfg.method == "kmeans"
    assert cfg.manifest()["k"] == "7" and cfg.manifest()["k_range"] == [3, 9]
    with pytest.raises(Exception):
        cfg.k = 3  # frozen


@pytest.mark.parametrize("kw, match", [
    ({"k": "0"}, "at least 1"), ({"k": "five"}, "positive integer"), ({"k": True}, "positive"),
    ({"k_range": (1, 5)}, "empty"), ({"k_range": (6, 3)}, "empty"), ({"k_range": "x"}, "two"),
    ({"method": ["kmeans", "kmeans"]}, "more than once"), ({"labels": "names"}, "labels"),
    ({"batch_size": 0}, "at least 1"), ({"features": "pixelz"}, "pixelz"),
    ({"method": "kmeans", "criterion": "bic"}, "does not apply"),
    ({"export": "delete"}, "export mode"),
])
def test_every_bad_option_is_a_usage_error(kw, match):
    with pytest.raises(ConfigError, match=match):
        RunConfig.parse(**kw)


def test_parse_helpers():
    assert parse_k("auto") == "auto" and parse_k(3) == 3
    assert parse_k_range([2, 2]) == (2, 2)


def test_bad_option_leaves_nothing_behind(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ConfigError):
        imgclust.run("dataset:digits", out, features="pixels", method="kmeans",
                     k_range=(1, 4))
    with pytest.raises(ConfigError, match="compare"):
        imgclust.compare("dataset:digits", out, methods=["kmeans", "kmeans"])
    assert not out.exists()


def test_a_large_run_samples_its_sweep_and_says_so(monkeypatch, tmp_path):
    """Above SAMPLE_MAX images the k sweep runs on a sample (fit_large); the note reaches
    summary.json, and the report's k story."""
    import json

    import imgclust.cluster.large as large
    from imgclust.report import build_report

    monkeypatch.setattr(large, "SAMPLE_MAX", 500)
    monkeypatch.setattr(large.fit_large, "__defaults__",
                        large.fit_large.__defaults__[:-1] + (500,))
    out = tmp_path / "big"
    res = imgclust.run("dataset:digits", out, features="pixels", method="kmeans", k="auto",
                       k_range=(8, 11))
    note = json.loads((out / "summary.json").read_text())["k"]["note"]
    assert "random sample of 500 of the 1,797 images" in note
    assert len(res.labels_) == 1797 and res.summary["n_clusters"] == res.selection.chosen
    assert "random sample of 500" in build_report(out, map_method="pca").read_text("utf-8")
