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


@pytest.mark.parametrize("features", ["auto", "cnn"])
def test_a_criterion_no_auto_method_takes_is_refused_before_reading(tmp_path, capsys,
                                                                    monkeypatch, features):
    """``--criterion bic`` with the automatic method: exit 2 before the first image is read,
    no run folder left behind (it used to fail after reading every image)."""
    from PIL import Image

    import imgclust.run.extract as extract
    from imgclust.cli import main

    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(4):
        Image.new("RGB", (40, 30), (60 * i, 0, 0)).save(root / f"{i}.png")
    monkeypatch.setattr(extract, "featurise_files", lambda *a, **k: pytest.fail("read images"))
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main(["run", str(root), "-f", features, "--criterion", "bic", "-o", str(out), "-q"])
    assert e.value.code == 2
    assert not out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "criterion='bic' does not apply to" in err[0] and "kmeans" in err[0]


def test_a_criterion_of_the_other_auto_method_chooses_it():
    from imgclust.features.auto import GLYPH_TAIL, choose_method

    assert choose_method("cnn,pca:50,umap:10")[:2] == ("kmeans", "log-elbow")
    assert choose_method("cnn,pca:50,umap:10", "graph")[:2] == ("knn-spectral", "graph")
    assert choose_method("pixels," + GLYPH_TAIL, "density")[:2] == ("kmeans", "density")
    assert choose_method("pixels," + GLYPH_TAIL, "silhouette")[:2] == ("knn-spectral",
                                                                       "silhouette")
