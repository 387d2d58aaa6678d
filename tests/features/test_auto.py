import numpy as np
from PIL import Image

from imgclust.features.auto import choose_features, choose_method, describe_images, is_gray


def gray_glyphs(rng, n=5, side=28):
    return [Image.fromarray((rng.random((side, side)) * 255).astype(np.uint8), "L")
            for _ in range(n)]


def photos(rng, n=5, side=96):
    return [Image.fromarray((rng.random((side, side, 3)) * 255).astype(np.uint8), "RGB")
            for _ in range(n)]


def test_small_gray_images_are_glyphs_and_colour_or_large_are_photos(rng):
    assert describe_images(gray_glyphs(rng)) == "glyph"
    assert describe_images(photos(rng)) == "photo"
    assert describe_images(gray_glyphs(rng, side=200)) == "photo"  # too large for a glyph
    assert describe_images(gray_glyphs(rng) + photos(rng, 1, side=28)) == "photo"  # one colour
    assert describe_images([]) == "photo"


def test_rgb_with_equal_channels_counts_as_gray(rng):
    g = (rng.random((16, 16)) * 255).astype(np.uint8)
    assert is_gray(Image.fromarray(np.stack([g, g, g], -1), "RGB"))
    assert describe_images([Image.fromarray(np.stack([g, g, g], -1), "RGB")]) == "glyph"


def test_glyph_rule_deskews_only_glyphs_large_enough(rng):
    spec28, why = choose_features(gray_glyphs(rng, side=28))
    assert spec28.split(",")[:3] == ["pixels", "deskew", "hog"] and "deskew" in why
    spec8, _ = choose_features(gray_glyphs(rng, side=8))
    assert spec8.startswith("pixels,") and "deskew" not in spec8 and "hog" not in spec8
    photo_spec, _ = choose_features(photos(rng))
    assert "deskew" not in photo_spec and not photo_spec.startswith("pixels,umap")


def test_method_rule(rng):
    glyphs, _ = choose_features(gray_glyphs(rng, side=28))
    method, criterion, why = choose_method(glyphs)
    assert (method, criterion) == ("kmeans", "density") and "HDBSCAN" in why
    photo_spec, _ = choose_features(photos(rng))  # CNN (or 32 px) features: not dense groups
    for spec in (photo_spec, "cnn,pca:50,umap:10", "pixels:32,pca:0.9"):
        method, criterion, why = choose_method(spec)
        assert (method, criterion) == ("kmeans", "silhouette") and "silhouette" in why
