import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from imgclust.features.auto import (GLYPH_TAIL, choose_features, choose_method, describe_images,
                                    is_gray)


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
    assert spec28 == "pixels:gray=true,deskew,hog:4:cells_per_block=3,pca:50:iterated_power=3" and "deskewed" in why
    spec8, why8 = choose_features(gray_glyphs(rng, side=8))  # too few pixels for 4-px HOG cells
    assert spec8 == "pixels:gray=true,resize:24,deskew,hog:4:cells_per_block=3,pca:50:iterated_power=3" and "24 px" in why8
    odd = [Image.fromarray((rng.random((20, 30)) * 255).astype(np.uint8), "L")]
    mixed = gray_glyphs(rng, 2, side=20) + gray_glyphs(rng, 2, side=28)
    for sample in (odd, mixed):  # deskew and HOG read square images of one size
        assert choose_features(sample)[0].startswith("pixels:24:gray=true,deskew,hog")
    photo_spec, _ = choose_features(photos(rng))
    assert "deskew" not in photo_spec and "hog" not in photo_spec


def test_method_rule(rng):
    glyphs, _ = choose_features(gray_glyphs(rng, side=28))
    method, criterion, why = choose_method(glyphs)
    assert (method, criterion) == ("knn-spectral", "graph") and "modularity" in why
    photo_spec, _ = choose_features(photos(rng))  # CNN (or 32 px) features: not dense groups
    for spec in (photo_spec, "cnn,pca:50,umap:10", "pixels:32,pca:0.9"):
        method, criterion, why = choose_method(spec)
        assert (method, criterion) == ("kmeans", "log-elbow") and "elbow" in why


def make_glyph_folder(root, n=40, side=28, seed=0):
    """``n`` gray ``side`` x ``side`` PNGs, crosses and rings alternating, slightly shifted."""
    from PIL import ImageDraw

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    s = side / 28
    for i in range(n):
        img = Image.new("L", (side, side), 0)
        draw = ImageDraw.Draw(img)
        o = int(rng.integers(-1, 2))
        if i % 2:
            draw.ellipse((6 * s + o, 6 * s, 21 * s + o, 21 * s), outline=255, width=max(1, int(3 * s)))
        else:
            draw.line((14 * s + o, 4 * s, 14 * s + o, 24 * s), fill=255, width=max(1, int(3 * s)))
            draw.line((4 * s, 14 * s + o, 24 * s, 14 * s + o), fill=255, width=max(1, int(3 * s)))
        img.save(root / f"{'ring' if i % 2 else 'cross'}_{i:02d}.png")
    return root


@pytest.mark.parametrize("side", [28, 12])  # 12 px glyphs are enlarged by resize first
def test_default_pipeline_clusters_a_folder_of_small_gray_pngs(tmp_path, side):
    """The folder decoder gives RGB images; the glyph pipeline (deskew, HOG) reads gray rows."""
    from imgclust.pipeline import run

    res = run(make_glyph_folder(tmp_path / "glyphs", side=side))
    assert res.summary["features"]["steps"][-3:] == GLYPH_TAIL.split(",")
    assert len(res.labels_) == 40 and res.clustering.n_clusters >= 2
    for c in set(res.labels_.tolist()):  # no cluster mixes crosses and rings
        assert len({res.ids[i].split("_")[0] for i in np.flatnonzero(res.labels_ == c)}) == 1


def test_default_cli_run_on_a_folder_of_small_gray_pngs(tmp_path):
    folder = make_glyph_folder(tmp_path / "glyphs")
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "imgclust.cli", "run", str(folder), "--out",
                           str(out), "-q", "--no-report"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len((out / "clusters.csv").read_text().splitlines()) == 41  # header + 40 images
