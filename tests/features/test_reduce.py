import numpy as np
import pytest

from imgclust.features import build_steps
from imgclust.features.reduce import Deskew, Resize


def test_tsne_step_embeds_in_two_dimensions(rng):
    X = rng.random((40, 12)).astype(np.float32)
    steps = build_steps("tsne:perplexity=5", random_state=0)
    tsne = steps[1][1]
    E = tsne.fit_transform(X)
    assert E.shape == (40, 2)
    np.testing.assert_allclose(build_steps("tsne:perplexity=5", random_state=0)[1][1]
                               .fit_transform(X), E, rtol=1e-4, atol=1e-4)


def test_umap_step_shape_and_separation(rng):
    pytest.importorskip("umap")
    X = np.vstack([rng.normal(0, 0.1, (30, 8)), rng.normal(3, 0.1, (30, 8))]).astype(np.float32)
    E = build_steps("umap:3:n_neighbors=5", random_state=0)[1][1].fit_transform(X)
    assert E.shape == (60, 3)
    gap = np.linalg.norm(E[:30].mean(0) - E[30:].mean(0))
    assert gap > 3 * max(E[:30].std(0).max(), E[30:].std(0).max())  # two groups stay apart


def test_seeded_umap_is_built_single_threaded_without_a_warning(rng, recwarn):
    pytest.importorskip("umap")
    X = rng.normal(size=(60, 5))
    est = build_steps("umap:2:n_neighbors=5", random_state=0)[1][1]
    assert est.random_state == 0 and est.n_jobs == 1  # the seed reached the factory
    est.fit_transform(X)
    assert not [w for w in recwarn if "n_jobs" in str(w.message)]
    assert build_steps("umap:2:n_jobs=-1")[1][1].n_jobs == -1  # unseeded: left as asked


def test_steps_compose(rng):
    pytest.importorskip("umap")
    imgs = rng.random((30, 8, 8))
    steps = build_steps("pixels,pca:6,umap:2:n_neighbors=5", random_state=0)
    X = steps[0][1].fit_transform(imgs)
    for _, est in steps[1:]:
        X = est.fit_transform(X)
    assert [s for s, _ in steps] == ["pixels", "pca:6", "umap:2:n_neighbors=5"]
    assert X.shape == (30, 2)


def slanted_bar(side: int, slope: float) -> np.ndarray:
    img = np.zeros((side, side), dtype=np.float32)
    for y in range(2, side - 2):
        x = int(round(side / 2 + slope * (y - side / 2)))
        img[y, x - 1:x + 1] = 1.0
    return img


def test_deskew_straightens_a_slanted_stroke():
    side = 20
    X = np.stack([slanted_bar(side, 0.4), slanted_bar(side, 0.0)]).reshape(2, -1)
    D = Deskew().fit_transform(X)
    assert D.shape == X.shape and D.dtype == np.float32

    def slope(img: np.ndarray) -> float:  # x-centroid per row against the row index
        rows = [(y, (img[y] * np.arange(side)).sum() / img[y].sum())
                for y in range(side) if img[y].sum() > 0]
        ys, xs = np.array(rows).T
        return float(np.polyfit(ys, xs, 1)[0])

    assert abs(slope(X[0].reshape(side, side))) > 0.3
    assert abs(slope(D[0].reshape(side, side))) < 0.05
    assert abs(slope(D[1].reshape(side, side))) < 0.05


def test_deskew_refuses_colour_and_keeps_blank_images():
    with pytest.raises(ValueError, match="deskew reads gray images; 1 of 2 rows .* pixels:gray=true"):
        Deskew().fit(colour_rows())
    blank = np.zeros((1, 64), dtype=np.float32)
    np.testing.assert_array_equal(Deskew().fit_transform(blank), blank)
    assert Deskew(image_shape="4x16").fit_transform(np.ones((1, 64))).shape == (1, 64)


def test_resize_enlarges_keeping_the_strokes_where_they_were():
    img = np.zeros((8, 8), np.float32)
    img[1:7, 3] = 1.0  # a vertical stroke in column 3 of 8
    R = Resize(24).fit_transform(img.reshape(1, -1))
    assert R.shape == (1, 576) and R.dtype == np.float32
    big = R.reshape(24, 24)
    assert 0.0 <= big.min() and big.max() <= 1.0  # cubic overshoot clipped to the image's range
    cols = big.sum(axis=0)
    assert abs(int(np.argmax(cols)) - 3 * 23 / 7) <= 1  # corner-aligned: column 3 -> ~9.9
    assert cols[:5].sum() < 0.05 * cols.sum() and cols[15:].sum() < 0.05 * cols.sum()


def test_resize_same_size_is_identity_and_shapes_are_checked():
    X = np.random.default_rng(0).random((3, 16 * 16)).astype(np.float32)
    np.testing.assert_allclose(Resize(16).fit_transform(X), X, atol=1e-5)
    assert Resize(6, image_shape="4x16").fit_transform(np.ones((1, 64))).shape == (1, 36)
    with pytest.raises(ValueError, match="resize reads gray images"):
        Resize().fit(colour_rows())
    with pytest.raises(ValueError, match="side=0"):
        Resize(0).fit(X)
    steps = build_steps("pixels,resize:24,deskew")
    assert [type(s).__name__ for _, s in steps] == ["PixelExtractor", "Resize", "Deskew"]
    assert steps[1][1].side == 24


def test_resize_by_matrix_equals_zooming_each_image(monkeypatch):
    """The batched linear map and scipy's zoom image by image give the same pixels."""
    import imgclust.features.reduce as reduce

    X = np.random.default_rng(3).random((5, 7 * 7)).astype(np.float32)
    fast = Resize(20).fit_transform(X)
    monkeypatch.setattr(reduce, "MAP_MAX", 0)  # force the per-image path
    slow = Resize(20).fit_transform(X)
    np.testing.assert_allclose(fast, slow, atol=1e-5)


def colour_rows(side: int = 16) -> np.ndarray:
    """Two flattened RGB images (channels last): the first gray, the second red."""
    X = np.zeros((2, side, side, 3), np.float32)
    X[1, ..., 0] = 1.0
    return X.reshape(2, -1)


def as_rgb_rows(X: np.ndarray) -> np.ndarray:
    """Flattened gray images as three equal channels, as ``pixels`` gives a folder's gray PNGs."""
    return np.repeat(X[:, :, None], 3, axis=2).reshape(len(X), -1)


@pytest.mark.parametrize("step", ["deskew", "resize:24", "hog:4:cells_per_block=3"])
def test_three_equal_channels_read_as_the_gray_image(step, rng):
    X = np.stack([slanted_bar(28, s) for s in (0.3, -0.2, 0.0)]).reshape(3, -1)
    gray = build_steps(step)[1][1].fit_transform(X)
    np.testing.assert_array_equal(build_steps(step)[1][1].fit_transform(as_rgb_rows(X)), gray)


def test_pca_caps_n_components_inside_fit_and_leaves_the_parameter(rng):
    from sklearn.base import clone
    from sklearn.decomposition import PCA

    X = rng.random((10, 8))
    pca = build_steps("pca:50")[1][1]
    E = pca.fit(X).transform(X)
    assert E.shape == (10, 8) and pca.n_components_ == 8
    assert pca.n_components == 50 and clone(pca).n_components == 50  # public parameter kept
    ref = PCA(8).fit(X)
    np.testing.assert_allclose(np.abs(E), np.abs(ref.transform(X)), atol=1e-8)
    np.testing.assert_allclose(pca.explained_variance_ratio_, ref.explained_variance_ratio_)
    # a share of the variance and None go to scikit-learn unchanged
    assert build_steps("pca:0.9")[1][1].fit(X).n_components_ == PCA(0.9).fit(X).n_components_
    assert build_steps("pca:none")[1][1].fit(X).n_components_ == 8
    assert build_steps("pca:3")[1][1].fit(X).transform(X[:2]).shape == (2, 3)


def test_rows_that_are_no_square_image_are_read_as_one_line_with_a_warning():
    X = np.zeros((2, 10), np.float32)
    X[:, 2] = 1.0
    with pytest.warns(UserWarning, match="rows of 10 values are not square images"):
        D = Deskew().fit_transform(X)
    assert D.shape == (2, 10) and D[0].argmax() in (4, 5)  # centred on its mass along the line
    with pytest.warns(UserWarning):
        assert Resize(6).fit_transform(X).shape == (2, 36)
    with pytest.raises(ValueError, match="does not hold"):  # a given shape must fit
        Deskew(image_shape="3x3").fit(X)


def test_pca_of_constant_features_warns_nothing_and_explains_no_variance(recwarn):
    pca = build_steps("pca:3")[1][1].fit(np.ones((20, 5)))
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    np.testing.assert_array_equal(pca.explained_variance_ratio_, 0.0)
    assert pca.transform(np.ones((2, 5))).shape == (2, 3)
