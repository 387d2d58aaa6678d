import json

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

import imgclust
from imgclust.errors import ConfigError, RunDirError


def test_three_colour_groups_come_back(color_folder, tmp_path):
    root, truth = color_folder
    res = imgclust.run(root, tmp_path / "out", features="pixels:8", method="kmeans", k="auto",
                       labels="folders")
    y = [truth[i] for i in res.ids]
    assert adjusted_rand_score(y, res.labels_) == 1.0
    assert res.summary["k"]["chosen"] == 3
    assert res.metrics["acc"] == 1.0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["n_images"] == 18 and summary["n_skipped"] == 0
    rows = (tmp_path / "out" / "clusters.csv").read_text().splitlines()
    assert rows[0] == "id,cluster,distance,is_representative" and len(rows) == 19


def test_digits_kmeans_baseline_matches_published_figure():
    res = imgclust.run("dataset:digits", features="pixels", method="kmeans", k=10)
    assert 0.75 < res.metrics["acc"] < 0.85  # measured 0.792 with n_init=10
    assert len(res.ids) == 1797


def test_non_empty_out_is_refused(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(RunDirError, match="not empty"):
        imgclust.run("dataset:digits", tmp_path, features="pixels", method="kmeans", k=10)
    with pytest.raises(RunDirError, match="refusing"):
        imgclust.run("dataset:digits", tmp_path, features="pixels", method="kmeans", k=10,
                     overwrite=True)
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_unknown_method_fails_before_reading():
    with pytest.raises(ConfigError, match="valid names: .*kmeans"):
        imgclust.run("dataset:digits", method="nope")


def test_fitted_steps_form_an_sklearn_pipeline():
    from sklearn.datasets import load_digits

    res = imgclust.run("dataset:digits", features="pixels,pca:20", method="kmeans", k=10)
    X = res.pipeline().transform(load_digits().images[:5])
    np.testing.assert_allclose(X, res.features_.X[:5], rtol=1e-4, atol=1e-4)


def test_pixels_width_is_fixed_by_the_first_image_across_batches(tmp_path):
    """Native-size pixels on mixed sizes: every batch is resized to the first image's size."""
    from PIL import Image

    from imgclust.pipeline import extract_features
    from imgclust.sources import open_source

    root = tmp_path / "mixed"
    root.mkdir()
    for i in range(7):  # sizes differ from batch to batch
        Image.new("RGB", (8 + i, 6 + 2 * i), (30 * i, 0, 0)).save(root / f"img{i}.png")
    feats, records, _, _ = extract_features(open_source(str(root)), "pixels", batch_size=2,
                                            progress=False)
    assert feats.X.shape == (7, 8 * 6 * 3)
    assert [r.id for r in records] == [f"img{i}.png" for i in range(7)]


def test_progress_on_a_non_terminal_prints_no_spinner(capsys):
    """Bars and spinners go to stderr; off a terminal the spinner writes nothing at all."""
    res = imgclust.run("dataset:digits", features="pixels,pca:5", method="agglomerative", k=10,
                       progress=True)
    assert len(set(res.labels_)) == 10
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "fitting pca:5" not in captured.err and "clustering:" not in captured.err
