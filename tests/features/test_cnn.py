"""The ``cnn`` step: the real EfficientNet-Lite0 exported to ONNX, on small Pillow drawings.

One export (size 64) is shared by the session; every cache file goes to a tmp folder.
"""
from __future__ import annotations

import importlib.util
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from imgclust.errors import ImgclustError, MissingExtraError
from imgclust.features import cnn
from imgclust.features.cnn import CNNExtractor, cached_onnx, onnx_filename

SIZE = 64
needs_cnn = [
    pytest.mark.cnn,
    pytest.mark.skipif(not cnn._can_export() or importlib.util.find_spec("onnxruntime") is None,
                       reason='needs the [cnn] extra: pip install "imgclust[cnn]"'),
]


@pytest.fixture(scope="session")
def exported(cache_dir: Path) -> Path:
    """The size-64 head graph, exported once (10-30 s) and shared."""
    if not cnn._can_export():
        pytest.skip("needs the [cnn] extra")
    path = cached_onnx(SIZE, "head")
    assert path.parent == cache_dir and path.name == onnx_filename(SIZE, "head")
    return path


def circle(shift: int = 0, color: tuple[int, int, int] = (200, 30, 30), size: int = 80,
           noise: int = 0, seed: int = 0, mode: str = "RGB") -> Image.Image:
    img = Image.new(mode, (size, size), "white" if mode == "RGB" else (0, 0, 0, 0))
    ImageDraw.Draw(img).ellipse((15 + shift, 15, 65 + shift, 65), fill=color, outline="black",
                                width=3)
    if noise:
        a = np.asarray(img, dtype=np.int16)
        a = a + np.random.default_rng(seed).integers(-noise, noise + 1, a.shape)
        img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    return img


def stripes(size: int = 80) -> Image.Image:
    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)
    for x in range(0, size, 10):
        d.rectangle((x, 0, x + 4, size), fill=(20, 60, 200))
    return img


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_import_pulls_in_neither_torch_nor_onnxruntime():
    code = ("import sys, imgclust.features.cnn, imgclust.features.registry as r; r.load_builtins();"
            "print('torch' in sys.modules, 'onnxruntime' in sys.modules, 'cnn' in r.names())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "True"]


@pytest.mark.parametrize("kwargs, match", [
    ({"size": 8}, "size=8"), ({"size": 64.0}, "size=64.0"), ({"layer": "fc"}, "valid layers: head"),
    ({"batch_size": 0}, "batch_size=0"), ({"n_threads": 0}, "n_threads=0"),
])
def test_parameters_are_checked_in_fit_not_init(kwargs, match):
    ext = CNNExtractor(**kwargs)  # __init__ stores, never validates
    assert ext.get_params()[next(iter(kwargs))] == next(iter(kwargs.values()))
    with pytest.raises(ValueError, match=match):
        ext.fit([])


def test_missing_onnxruntime_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(MissingExtraError, match=r'pip install "imgclust\[cnn\]"'):
        CNNExtractor().fit([])


def test_without_torch_nothing_cached_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setattr(cnn, "_can_export", lambda: False)
    with pytest.raises(MissingExtraError, match=r"torch is missing.*imgclust\[cnn\]"):
        cached_onnx(SIZE, "head", tmp_path)


def test_cache_key_ignores_runtime_settings_and_follows_the_output():
    a = CNNExtractor(size=96).cache_key()
    assert a == CNNExtractor(size=96, batch_size=7, n_threads=1, cache_dir="/x").cache_key()
    assert a != CNNExtractor(size=128).cache_key()
    assert a != CNNExtractor(size=96, layer="stage6").cache_key()
    assert CNNExtractor(layer="stage5").output_dim == 112 and CNNExtractor().output_dim == 1280


@pytest.mark.usefixtures("exported")
class TestExported:
    pytestmark = needs_cnn

    def test_shape_dtype_determinism(self):
        imgs = [circle(), stripes(), circle(color=(30, 160, 40)), stripes(size=50)]
        ext = CNNExtractor(size=SIZE)
        X = ext.fit_transform(imgs)
        assert X.shape == (4, 1280) and X.dtype == np.float32
        assert np.isfinite(X).all() and (X >= 0).all() and X.std() > 0  # pooled relu6: >= 0
        assert np.array_equal(ext.transform(imgs), X)
        # batch split does not change the numbers the cache key promises to be equal
        assert np.allclose(CNNExtractor(size=SIZE, batch_size=1).transform(imgs), X, atol=1e-5)

    def test_near_identical_images_embed_closer_than_different_ones(self):
        X = CNNExtractor(size=SIZE).fit_transform(
            [circle(), circle(shift=2, noise=6, seed=1), stripes()])
        # measured: 0.86 for the shifted, noisy copy, 0.23 for the stripes
        assert cos(X[0], X[1]) > cos(X[0], X[2]) + 0.3

    def test_gray_and_transparent_inputs(self):
        rgb = circle(color=(128, 128, 128))
        gray = rgb.convert("L")
        rgba = circle(color=(128, 128, 128), mode="RGBA")  # transparent black around the circle
        assert rgba.getpixel((0, 0)) == (0, 0, 0, 0)
        X = CNNExtractor(size=SIZE).fit_transform([rgb, gray, rgba])
        assert np.array_equal(X[0], X[1])  # 'L' becomes three equal channels
        assert np.array_equal(X[0], X[2])  # transparency is composited onto white
        arr = CNNExtractor(size=SIZE).fit_transform(np.asarray(gray)[None])  # (1, H, W) array
        assert np.array_equal(arr[0], X[1])

    def test_cache_file_created_once_and_reused(self, exported, cache_dir, monkeypatch):
        before = exported.stat().st_mtime_ns
        assert not list(cache_dir.glob("*.tmp"))  # the atomic write left no temporary file
        assert list(cache_dir.glob(f"efficientnet-lite0-s{SIZE}-head-*")) == [exported]
        monkeypatch.setattr(cnn, "export_onnx",
                            lambda *a, **k: pytest.fail("exported again despite the cache"))
        ext = CNNExtractor(size=SIZE)
        ext.fit_transform([circle()])
        assert ext.onnx_path_ == exported and exported.stat().st_mtime_ns == before

    def test_only_onnxruntime_needed_once_cached(self, exported, cache_dir, monkeypatch):
        # other package versions (a different file name) and no torch: the cached graph is used
        monkeypatch.setattr(cnn, "_can_export", lambda: False)
        monkeypatch.setattr(cnn, "_export_versions", lambda: {"torch": "other"})
        assert cached_onnx(SIZE, "head", cache_dir) == exported

    def test_pickle_drops_the_session(self):
        ext = CNNExtractor(size=SIZE)
        X = ext.fit_transform([circle()])
        state = ext.__getstate__()
        assert "_session_" not in state
        clone = pickle.loads(pickle.dumps(ext))
        assert np.array_equal(clone.transform([circle()]), X)

    def test_corrupt_cache_file_is_named(self, tmp_path, monkeypatch):
        bad = tmp_path / onnx_filename(SIZE, "head")
        bad.write_bytes(b"not an onnx graph")
        with pytest.raises(ImgclustError, match=f"(?s){bad.name}.*delete the file"):
            CNNExtractor(size=SIZE, cache_dir=str(tmp_path)).fit_transform([circle()])

    def test_earlier_layer(self, cache_dir):
        ext = CNNExtractor(size=SIZE, layer="stage4")
        X = ext.fit_transform([circle(), stripes()])
        assert X.shape == (2, 80) and X.dtype == np.float32 and np.isfinite(X).all()
        assert ext.onnx_path_.name.startswith(f"efficientnet-lite0-s{SIZE}-stage4-")

    def test_run_end_to_end(self, tmp_path):
        import imgclust

        root = tmp_path / "imgs"
        for cls, make in (("circles", lambda i: circle(shift=i - 3, noise=8, seed=i)),
                          ("stripes", lambda i: stripes(size=60 + 4 * i))):
            (root / cls).mkdir(parents=True)
            for i in range(5):
                make(i).save(root / cls / f"{i}.png")
        res = imgclust.run(root, tmp_path / "out", features=f"cnn:{SIZE}", method="kmeans", k=2,
                           labels="folders")
        assert res.features_.X.shape == (10, 1280)
        assert res.metrics["acc"] == 1.0
        assert (tmp_path / "out" / "summary.json").is_file()
