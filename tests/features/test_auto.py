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


def test_glyph_rule_enlarges_small_glyphs_and_squares_odd_ones(rng):
    spec28, why = choose_features(gray_glyphs(rng, side=28))
    assert spec28 == "pixels,deskew,hog:4:cells_per_block=3,pca:50:iterated_power=3" and "deskewed" in why
    spec8, why8 = choose_features(gray_glyphs(rng, side=8))  # too few pixels for 4-px HOG cells
    assert spec8 == "pixels,resize:24,deskew,hog:4:cells_per_block=3,pca:50:iterated_power=3" and "24 px" in why8
    odd = [Image.fromarray((rng.random((20, 30)) * 255).astype(np.uint8), "L")]
    mixed = gray_glyphs(rng, 2, side=20) + gray_glyphs(rng, 2, side=28)
    for sample in (odd, mixed):  # deskew and HOG read square images of one size
        assert choose_features(sample)[0].startswith("pixels:24,deskew,hog")
    photo_spec, _ = choose_features(photos(rng))
    assert "deskew" not in photo_spec and "hog" not in photo_spec


def test_method_rule(rng):
    glyphs, _ = choose_features(gray_glyphs(rng, side=28))
    method, criterion, why = choose_method(glyphs)
    assert (method, criterion) == ("knn-spectral", "graph") and "modularity" in why
    photo_spec, _ = choose_features(photos(rng))  # CNN (or 32 px) features: not dense groups
    for spec in (photo_spec, "cnn,pca:50,umap:10", "pixels:32,pca:0.9"):
        method, criterion, why = choose_method(spec)
        assert (method, criterion) == ("kmeans", "silhouette") and "silhouette" in why
