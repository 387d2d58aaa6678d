"""``onnx:PATH``: a user's own ONNX encoder, on tiny models made here with onnx.helper."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

from imgclust.errors import ConfigError  # noqa: E402
from imgclust.features.onnx import NORMALISATIONS, OnnxExtractor  # noqa: E402
from imgclust.features.registry import FEATURES, load_builtins  # noqa: E402


def _save(path, nodes, inp, out, inits=()):
    graph = helper.make_graph(nodes, "tiny", [inp], [out], initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def pool_model(path, size=None):
    """(n, 3, h, w) -> GlobalAveragePool -> (n, 3, 1, 1): the channel means (a 4-D output)."""
    inp = helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT,
                                        ["n", 3, size or "h", size or "w"])
    out = helper.make_tensor_value_info("maps", TensorProto.FLOAT, ["n", 3, 1, 1])
    return _save(path, [helper.make_node("GlobalAveragePool", ["pixel_values"], ["maps"])],
                 inp, out)


def token_model(path):
    """(n, h, w, 3) NHWC -> reshape to tokens (n, h*w, 3): a 3-D output, one token per pixel."""
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 16, 16, 3])
    out = helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["n", 256, 3])
    shape = helper.make_tensor("shape", TensorProto.INT64, [3], [0, 256, 3])
    return _save(path, [helper.make_node("Reshape", ["x", "shape"], ["tokens"])], inp, out,
                 [shape])


def images():
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (20 + 3 * i, 30, 3), dtype=np.uint8))
            for i in range(5)] + [Image.new("RGBA", (12, 12), (255, 0, 0, 0))]


def test_channel_means_normalised_as_asked(tmp_path):
    path = pool_model(tmp_path / "m.onnx")
    ext = OnnxExtractor(str(path), size=16, norm="imagenet", batch_size=4)
    X = ext.fit_transform(images())
    assert X.shape == (6, 3) and X.dtype == np.float32 and ext.output_dim == 3
    mean, std = (np.asarray(v, np.float32) for v in NORMALISATIONS["imagenet"])
    want = [(np.asarray(ext._prepare(im), np.float32) / 255 - mean).mean(axis=(0, 1)) / std
            for im in images()]
    np.testing.assert_allclose(X, np.array(want), rtol=1e-4, atol=1e-5)
    # a transparent image is flattened onto white: every channel at (1 - mean) / std
    np.testing.assert_allclose(X[5], (1 - mean) / std, rtol=1e-5)
    # mean/std override the named normalisation; l2 gives unit vectors
    ext2 = OnnxExtractor(str(path), size=16, mean="0.5/0.5/0.5", std="0.5", l2=True)
    X2 = ext2.fit_transform(images())
    np.testing.assert_allclose(np.linalg.norm(X2, axis=1), 1.0, rtol=1e-5)
    assert ext.cache_key() != ext2.cache_key()
    assert ext.cache_key() == OnnxExtractor(str(path), size=16, batch_size=1).cache_key()


def test_token_output_pooled_and_size_from_model(tmp_path):
    path = token_model(tmp_path / "t.onnx")
    ims = images()
    cls = OnnxExtractor(str(path), norm="none").fit_transform(ims)  # size 16 from the model
    mean = OnnxExtractor(str(path), norm="none", pooling="mean").fit_transform(ims)
    prep = OnnxExtractor(str(path), norm="none")
    prep.fit(ims)
    first = [np.asarray(prep._prepare(im), np.float32)[0, 0] / 255 for im in ims]
    np.testing.assert_allclose(cls, np.array(first), atol=1e-6)
    avg = [np.asarray(prep._prepare(im), np.float32).mean(axis=(0, 1)) / 255 for im in ims]
    np.testing.assert_allclose(mean, np.array(avg), atol=1e-5)
    with pytest.raises(ConfigError, match="fixed at 16x16; size=32"):
        OnnxExtractor(str(path), size=32).fit(ims)


def test_bad_files_refused_before_any_image(tmp_path):
    text = tmp_path / "notes.onnx"
    text.write_text("hello")
    with pytest.raises(ConfigError, match="no such file"):
        OnnxExtractor(str(tmp_path / "gone.onnx")).fit([])
    with pytest.raises(ConfigError, match="not an ONNX model"):
        OnnxExtractor(str(text)).fit([])
    flat = helper.make_tensor_value_info("v", TensorProto.FLOAT, ["n", 8])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 8])
    rank2 = _save(tmp_path / "r2.onnx", [helper.make_node("Relu", ["v"], ["y"])], flat, out)
    with pytest.raises(ConfigError, match=r"rank 2\); an image encoder takes a rank-4"):
        OnnxExtractor(str(rank2)).fit([])
    with pytest.raises(ConfigError, match="norm='dino'; valid"):
        OnnxExtractor(str(rank2), norm="dino").fit([])


def test_registered_and_checked_through_the_registry(tmp_path):
    load_builtins()
    path = pool_model(tmp_path / "m.onnx")
    est = FEATURES.check(f"onnx:{path}:size=16:norm=clip")
    assert isinstance(est, OnnxExtractor) and est.size == 16
    about = FEATURES.describe("onnx")
    assert "ONNX" in about["description"]
    assert {"path", "size", "norm", "mean", "std", "pooling", "layout"} <= {
        p["name"] for p in about["parameters"]}


def test_cli_missing_model_is_one_line_usage_error_and_a_run_works(tmp_path):
    src = tmp_path / "imgs"
    src.mkdir()
    for i, colour in enumerate([(250, 0, 0)] * 4 + [(0, 0, 250)] * 4):
        Image.new("RGB", (20, 20), tuple(max(0, c - 3 * i) for c in colour)).save(src / f"{i}.png")
    cmd = [sys.executable, "-m", "imgclust.cli"]
    r = subprocess.run(cmd + ["run", str(src), "--features", f"onnx:{tmp_path / 'no.onnx'}",
                              "--out", str(tmp_path / "out0"), "--no-report"],
                       capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "no such file" in lines[0] and "Traceback" not in r.stderr
    assert not (tmp_path / "out0").exists()
    path = pool_model(tmp_path / "m.onnx")
    r = subprocess.run(cmd + ["run", str(src), "--features", f"onnx:{path}:size=8", "-k", "2",
                              "-m", "kmeans", "--out", str(tmp_path / "out"), "--no-report"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = (tmp_path / "out" / "clusters.csv").read_text().splitlines()[1:]
    assert len(rows) == 8
    m = subprocess.run(cmd + ["methods", "onnx"], capture_output=True, text=True)
    assert m.returncode == 0 and "ONNX" in m.stdout and "norm" in m.stdout
