"""A library's refusal is one line, never a traceback (issue 11's siblings)."""
from __future__ import annotations

import numpy as np
import pytest

from imgclust.errors import ImgclustError
from imgclust.model import Features


def test_an_estimator_refusing_the_features_is_one_imgclust_error(monkeypatch):
    import imgclust.run.clustering as stage

    def refuse(*a, **kw):
        raise ValueError("Fitting the mixture model failed because some components have "
                         "ill-defined empirical covariance\nsecond line")

    monkeypatch.setattr(stage, "fit_large", refuse)
    feats = Features(ids=tuple("abcd"), X=np.zeros((4, 3), np.float32))
    with pytest.raises(ImgclustError, match="gmm failed on these 4 images x 3 features: "
                       "Fitting the mixture model failed .*covariance; try another method"):
        stage.cluster_features(feats, "gmm", 2, None, (2, 3), 0, False)


def test_an_unexpected_exception_is_one_line_and_exit_1(monkeypatch, capsys):
    import imgclust.pipeline as pipeline  # what the CLI imports run from
    from imgclust.cli import main

    def boom(*a, **kw):
        raise RuntimeError("something broke\nwith a second line")

    monkeypatch.setattr(pipeline, "run", boom)
    monkeypatch.delenv("IMGCLUST_DEBUG", raising=False)
    with pytest.raises(SystemExit) as e:
        main(["run", "--out", "/nonexistent/x", "-q", "--no-report"])
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines() == [
        "error: RuntimeError: something broke (an unexpected failure; IMGCLUST_DEBUG=1 shows where)"]
