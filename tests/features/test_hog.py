import numpy as np
import pytest

from imgclust.features import build_steps
from imgclust.features.hog import HOG


def bar(side: int, horizontal: bool, at: int) -> np.ndarray:
    img = np.zeros((side, side), np.float32)
    if horizontal:
        img[at:at + 2, 2:-2] = 1.0
    else:
        img[2:-2, at:at + 2] = 1.0
    return img.reshape(-1)


def test_shape_determinism_and_range():
    X = np.random.default_rng(0).random((3, 16 * 16)).astype(np.float32)
    H = HOG().fit_transform(X)
    # 16 px / 4 px cells = 4x4 cells; 2x2-cell blocks at stride 1 = 3x3 blocks of 4 cells x 12 bins
    assert H.shape == (3, 3 * 3 * 4 * 12) and H.dtype == np.float32
    assert (H >= 0).all() and np.isfinite(H).all()
    np.testing.assert_array_equal(H, HOG().fit(X).transform(X))


def test_a_shifted_stroke_stays_close_a_turned_one_does_not():
    """Two horizontal bars 2 px apart share no pixel but most of their HOG; a vertical bar
    crossing them shares pixels but little HOG."""
    X = np.stack([bar(16, True, 5), bar(16, True, 7), bar(16, False, 7)])
    H = HOG().fit_transform(X)

    def cos(a, b):
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    assert cos(X[0], X[1]) == 0 and cos(X[0], X[2]) > 0  # in pixels, the other way round
    assert cos(H[0], H[1]) > 0.5 and cos(H[0], H[2]) < 0.1


def test_refuses_colour_and_too_small_images():
    colour = np.zeros((2, 16, 16, 3), np.float32)
    colour[0, ..., 2] = 1.0  # blue
    with pytest.raises(ValueError, match="hog reads gray images; 1 of 2 rows"):
        HOG().fit(colour.reshape(2, -1))
    with pytest.raises(ValueError, match="smaller than one block"):
        HOG().fit(np.zeros((2, 36)))  # 6x6 < 2 cells of 4 px


def test_registered_and_composes():
    steps = build_steps("pixels:16:gray=true,deskew,hog:4:orientations=9")
    assert [type(s).__name__ for _, s in steps] == ["PixelExtractor", "Deskew", "HOG"]
    assert steps[2][1].orientations == 9 and steps[2][1].pixels_per_cell == 4


@pytest.mark.parametrize("ppc,ori,cpb,side", [(4, 12, 2, 16), (4, 9, 3, 28), (5, 12, 2, 23),
                                              (3, 8, 1, 10)])
def test_batch_matches_scikit_image(ppc, ori, cpb, side):
    """hog_batch is scikit-image's hog, one batch at a time (odd sizes leave pixels over)."""
    skimage_feature = pytest.importorskip("skimage.feature")
    from imgclust.features.hog import hog_batch

    rng = np.random.default_rng(1)
    imgs = rng.random((5, side, side)).astype(np.float32)
    imgs[0] = 0.0  # a blank image: no gradient at all
    imgs[1, :, : side // 2] = 0.0  # a hard edge
    ours = hog_batch(imgs, ppc, ori, cpb)
    ref = np.stack([skimage_feature.hog(im, orientations=ori, pixels_per_cell=(ppc, ppc),
                                        cells_per_block=(cpb, cpb), block_norm="L2-Hys")
                    for im in imgs])
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-5)
