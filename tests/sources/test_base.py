"""ArraySource: arrays and .npz files as image sources."""
import numpy as np
import pytest

from imgclust.errors import SourceError
from imgclust.sources import open_source
from imgclust.sources.base import ArraySource


def _save(path, images, labels=None):
    arrays = {"images": images} | ({"labels": labels} if labels is not None else {})
    np.savez(path, **arrays)
    return path


def test_npz_reads_images_and_labels(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, (5, 6, 7), dtype=np.uint8)
    src = open_source(str(_save(tmp_path / "a.npz", imgs, np.array([0, 1, 1, 2, 0]))))
    assert src.candidates() == ["0", "1", "2", "3", "4"]
    rec, img = src.read("3")
    assert (rec.width, rec.height) == (7, 6)
    np.testing.assert_array_equal(np.asarray(img), imgs[3])
    assert src.labels() == {"0": "0", "1": "1", "2": "1", "3": "2", "4": "0"}


def test_float_arrays_share_one_scale():
    imgs = np.zeros((2, 2, 2))
    imgs[0] = 16.0
    imgs[1] = 8.0  # half as bright as image 0, and stays so
    src = ArraySource("x", imgs)
    assert np.asarray(src.read("0")[1]).max() == 255
    assert np.asarray(src.read("1")[1]).max() == 128


def test_fingerprint_follows_the_pixels_not_the_file_name(tmp_path):
    imgs = np.random.default_rng(1).integers(0, 256, (4, 5, 5), dtype=np.uint8)
    a = open_source(str(_save(tmp_path / "a.npz", imgs))).fingerprint()
    moved = open_source(str(_save(tmp_path / "b.npz", imgs))).fingerprint()
    assert a == moved  # a moved array file keeps its fingerprint (a run can be resumed)
    changed = imgs.copy()
    changed[2, 1, 1] ^= 1
    assert open_source(str(_save(tmp_path / "c.npz", changed))).fingerprint() != a
    assert ArraySource("x", imgs.astype(np.float32)).fingerprint() != a  # dtype counts


@pytest.mark.parametrize("shape", [(3, 4), (3, 4, 4, 2), (3, 4, 4, 5)])
def test_bad_shapes_are_refused_with_the_name(shape):
    with pytest.raises(ValueError, match="arr.npz"):
        ArraySource("arr.npz", np.zeros(shape))


def test_label_count_must_match():
    with pytest.raises(ValueError, match="2 labels for 3 images"):
        ArraySource("x", np.zeros((3, 4, 4)), labels=np.array([0, 1]))


def _inf_pixel():
    a = np.zeros((4, 5, 5), np.float32)
    a[1, 2, 2] = np.inf
    a[3, 0, 0] = np.nan
    return {"images": a}


@pytest.mark.parametrize("arrays,message", [
    ({"images": np.zeros((3, 4, 4), np.uint8), "labels": np.array(2)}, r"shape \(3,\); got shape \(\)"),
    ({"images": np.zeros((3, 4, 4), np.uint8), "labels": np.zeros((3, 2))}, r"got shape \(3, 2\)"),
    ({"images": np.zeros((3, 4, 4), np.uint8), "labels": np.arange(5)}, "5 labels for 3 images"),
    ({"images": np.full((3, 4, 4), "a")}, "dtype <U1; expected real numbers"),
    ({"images": np.zeros((3, 4, 4), np.complex64)}, "dtype complex64"),
    ({"images": np.zeros((3, 0, 4), np.uint8)}, "0 x 4 pixels"),
    ({"images": np.zeros((3, 4, 0), np.uint8)}, "4 x 0 pixels"),
    ({"images": np.zeros((0, 4, 4), np.uint8)}, "no images"),
    ({"pics": np.zeros((3, 4, 4), np.uint8)}, r"no 'images' array \(found: pics\)"),
    ({"images": np.zeros((3, 4, 4), np.float32), "labels": np.array([0, np.nan, 1])},
     "1 labels are NaN"),
    (_inf_pixel(), "2 pixel value.s. are NaN or infinite, in 2 of 4 images"),
])
def test_bad_npz_contents_are_one_source_error(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(SourceError, match=message) as info:
        open_source(str(tmp_path / "bad.npz"))
    assert "bad.npz" in str(info.value) and "\n" not in str(info.value)


def test_object_arrays_are_never_unpickled(tmp_path):
    objs = np.empty(3, dtype=object)
    objs[:] = [np.zeros(2), "x", None]
    np.savez(tmp_path / "obj.npz", images=np.zeros((3, 4, 4), np.uint8), labels=objs)
    with pytest.raises(SourceError, match="'labels' holds Python objects"):
        open_source(str(tmp_path / "obj.npz"))


@pytest.mark.parametrize("content,message", [
    (b"", "not an .npz archive"),
    (b"hello\n", "not an .npz archive"),
    (None, "a single .npy array"),
    (b"PK\x03\x04 truncated", "cannot read as .npz"),
])
def test_files_that_are_not_npz_archives(tmp_path, content, message):
    p = tmp_path / "x.npz"
    if content is None:  # a .npy renamed .npz
        with open(p, "wb") as f:
            np.save(f, np.zeros((3, 4, 4), np.uint8))
    else:
        p.write_bytes(content)
    with pytest.raises(SourceError, match=message):
        open_source(str(p))


def test_standardised_arrays_keep_their_negative_half():
    imgs = np.array([[[-1.0, 0.0], [1.0, 1.0]]])  # mean 0 data: -1 is black, +1 white
    a = np.asarray(ArraySource("x", imgs).read("0")[1])
    assert a.tolist() == [[0, 128], [255, 255]]
