"""ArraySource: arrays and .npz files as image sources."""
import numpy as np
import pytest

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
