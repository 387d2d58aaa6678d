"""Decoding to the size the features need (``min_side``): JPEG draft scales, never full size."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from imgclust.errors import DecodeError
from imgclust.features.registry import decode_side
from imgclust.sources.decode import decode_image, target_side
from imgclust.sources.folder import FolderSource


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory: pytest.TempPathFactory):
    """A 4000x2250 (16:9) JPEG of smooth noise."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (45, 80, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((4000, 2250), Image.Resampling.BILINEAR)
    path = tmp_path_factory.mktemp("big") / "wide.jpg"
    img.save(path, "JPEG", quality=85)
    return path


@pytest.fixture
def drafts(monkeypatch):
    """Every JPEG draft request and the size the decoder will deliver."""
    seen = []
    real = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size, *a, **kw):
        out = real(self, mode, size, *a, **kw)
        seen.append((tuple(size), self.size))
        return out

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    return seen


def test_target_side():
    assert target_side((4000, 2250), 512, None) == 512
    assert target_side((4000, 2250), 512, 224) == 399  # shorter side stays 224
    assert target_side((2250, 4000), 512, 224) == 399  # portrait alike
    assert target_side((5000, 1000), 512, 224) == 512  # a panorama keeps the 512 cap
    assert target_side((100, 80), 512, 224) == 280  # small images are never enlarged (below)
    assert target_side((4000, 2250), None, 224) == 399


def test_large_jpeg_decoded_at_the_draft_scale_the_features_need(big_jpeg, drafts):
    rec, img = decode_image(str(big_jpeg), "wide.jpg", min_side=224)
    assert (rec.width, rec.height) == (4000, 2250)  # the record keeps the file's own size
    assert img.mode == "RGB" and img.size[0] == 399 and 224 <= img.size[1] <= 225
    # draft asked for the smallest size covering 399x224 and got 1/8 scale: 500x282 decoded
    assert drafts[0] == ((399, 224), (500, 282))
    drafts.clear()
    _, img512 = decode_image(str(big_jpeg), "wide.jpg")  # as before: longer side 512
    assert img512.size == (512, 288) and drafts[0] == ((512, 288), (1000, 563))  # 1/4 scale


def test_small_image_never_enlarged(tmp_path):
    p = tmp_path / "small.png"
    Image.new("RGB", (100, 80), (10, 200, 30)).save(p)
    assert decode_image(str(p), "small.png", min_side=224)[1].size == (100, 80)


def test_png_shrunk_to_shorter_side_before_rgb(tmp_path):
    p = tmp_path / "wide.png"
    Image.new("RGBA", (1600, 900), (10, 200, 30, 128)).save(p)
    rec, img = decode_image(str(p), "wide.png", min_side=100)
    assert img.size == (178, 100) and img.mode == "RGB" and rec.mode == "RGBA"


def test_pixel_cap_still_refuses_before_decoding(big_jpeg):
    with pytest.raises(DecodeError, match="image too large"):
        decode_image(str(big_jpeg), "wide.jpg", min_side=224, max_pixels=1_000_000)
    with pytest.raises(DecodeError, match="decode budget"):
        decode_image(str(big_jpeg), "wide.jpg", min_side=224, max_decoded_bytes=10_000)


def test_folder_source_decodes_at_the_side_it_is_given(big_jpeg, drafts):
    src = FolderSource(big_jpeg.parent)
    assert src.read("wide.jpg")[1].size == (512, 288)
    src.set_decode_side(decode_side("cnn:model=lite2"))
    assert src.min_side == 260
    w, h = src.read("wide.jpg")[1].size
    assert w < 512 and 260 <= h <= 261
    src.set_decode_side(None)
    assert src.read("wide.jpg")[1].size == (512, 288)


def test_steps_declare_their_decode_side():
    assert decode_side("cnn") == 224 and decode_side("cnn:128,pca:50") == 128
    assert decode_side("cnn:model=lite2") == 260
    # pixels:SIZE squashes every image to SIZE x SIZE: a shorter side of SIZE is enough;
    # pixels without a size keeps the first image's, so images decode as they come
    assert decode_side("pixels:32,pca:50") == 32 and decode_side("pixels") is None
    assert decode_side("pca:50") is None


@pytest.mark.parametrize("fmt", ["WEBP", "PNG", "JPEG"])
def test_decoded_image_holds_no_decoder(tmp_path, fmt):
    """The image returned is a plain Pillow image: a WebP file object keeps libwebp's decoder
    and the full-size frame (14 wallpapers of 4096x4096 held 2.1 GB; now 566 MB)."""
    from PIL import ImageFile

    p = tmp_path / f"x.{fmt.lower()}"
    Image.new("RGB", (600, 400), (30, 120, 200)).save(p, fmt)
    img = decode_image(str(p), p.name, min_side=64)[1]
    assert not isinstance(img, ImageFile.ImageFile) and img.mode == "RGB"
    assert img.size[1] == 64


def test_a_run_and_its_assign_decode_at_the_features_size(big_jpeg, drafts, tmp_path):
    """imgclust.run sets the folder's decode side from the feature spec before the first image
    (pixels:8 needs a shorter side of 8: the JPEG's 1/8 draft), and assigning new images to the
    run decodes them the same way."""
    import shutil

    import imgclust

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        shutil.copy(big_jpeg, folder / f"p{i}.jpg")
    res = imgclust.run(folder, tmp_path / "run", features="pixels:8", method="kmeans", k=2)
    assert drafts and all(got == (500, 282) for _, got in drafts)  # 4000x2250 at 1/8
    drafts.clear()
    back = imgclust.load(tmp_path / "run")
    back.predict(folder)
    assert drafts and all(got == (500, 282) for _, got in drafts)
    assert len(res.labels_) == 3
