import numpy as np
import pytest
from PIL import Image

from imgclust.features import build_steps
from imgclust.features.pixels import PixelExtractor


def test_native_size_gray_array_is_flattened_and_scaled():
    a = np.zeros((2, 8, 8), dtype=np.uint8)
    a[1] = 255
    X = PixelExtractor().fit_transform(a)
    assert X.shape == (2, 64) and X.dtype == np.float32
    assert X[0].max() == 0.0 and X[1].min() == 1.0


def test_resize_and_rgb_flattening_of_transparent_pixels():
    img = Image.new("RGBA", (20, 10), (255, 0, 0, 0))  # fully transparent red -> white
    X = PixelExtractor(size=4, gray=False).transform([img])
    assert X.shape == (1, 48)
    np.testing.assert_allclose(X, 1.0)


def test_gray_option_gives_one_channel():
    img = Image.new("RGB", (16, 16), (0, 255, 0))
    X = PixelExtractor(size=8, gray=True).transform([img])
    assert X.shape == (1, 64)
    assert 0.5 < X[0, 0] < 0.7  # ITU-R 601 luma of pure green is 0.587


def test_bad_size_is_refused_when_used():
    ext = PixelExtractor(size=0)  # __init__ stores, validation happens on use
    with pytest.raises(ValueError, match="size=0"):
        ext.transform(np.zeros((1, 4, 4)))


def test_array_step_gets_pixels_in_front():
    steps = build_steps("pca:5")
    assert [s for s, _ in steps] == ["pixels", "pca:5"]
    assert steps[1][1].n_components == 5


def test_refit_relearns_the_size_and_colour():
    ext = PixelExtractor().fit(np.zeros((2, 8, 8)))
    assert ext.transform(np.zeros((1, 8, 8))).shape == (1, 64)
    ext.fit([Image.new("RGB", (16, 16), (200, 10, 10))])  # a refit on larger colour images
    assert (ext.image_size_, ext.gray_) == ((16, 16), False)
    assert ext.transform([Image.new("RGB", (16, 16))]).shape == (1, 16 * 16 * 3)


def test_transform_before_fit_needs_fit_only_when_something_is_learned():
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    for ext in (PixelExtractor(), PixelExtractor(size=4), PixelExtractor(gray=True)):
        with pytest.raises(NotFittedError, match="PixelExtractor is not fitted"):
            ext.transform(np.zeros((1, 4, 4)))
        with pytest.raises(NotFittedError):
            check_is_fitted(ext)
    given = PixelExtractor(size=4, gray=True)  # nothing left to learn
    check_is_fitted(given)
    assert given.transform(np.zeros((1, 8, 8))).shape == (1, 16)
