"""``onnx:PATH``: features from a user's own ONNX image encoder (a CLIP or DINOv2 export).

The file is opened with ONNX Runtime (CPU, every core) when the spec is checked, before the
first image is read: a missing file, a file that is not an ONNX model, or a model whose image
input is not 4-D is one error line. Images are flattened onto white, converted to RGB, resized
(the whole image, or the shorter side then a centre crop), scaled to 0..1, normalised with
``(x - mean) / std`` per channel, laid out as NCHW or NHWC, and run in batches. A 2-D output
(n, d) is used as it is; a 3-D output (n, tokens, d) is pooled over the tokens (the first,
CLS token by default) and a 4-D output (n, channels, h, w) over the positions.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imgclust.errors import ConfigError, MissingExtraError
from imgclust.features.base import (ImageExtractor, flatten_to_rgb, ort_release_options,
                                    ort_session_options)
from imgclust.features.registry import FEATURES

#: named normalisations: (mean, std) per RGB channel, applied to pixels scaled to 0..1
NORMALISATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # DINOv2, torchvision models
    "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    "inception": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # to -1..1 (SigLIP, Inception, TF models)
    "none": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),  # 0..1
}
LAYOUTS = ("auto", "nchw", "nhwc")
POOLINGS = ("auto", "cls", "mean", "max")
_MISSING = "the 'onnx' feature step"


def _n_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _triple(value: Any, name: str) -> tuple[float, float, float] | None:
    """``"0.5/0.5/0.5"`` (or commas), one number or three numbers -> three floats (or None)."""
    if value is None:
        return None
    if isinstance(value, str):
        parts = [p for p in value.replace("/", ",").split(",") if p.strip()]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        parts = [value]
    else:
        parts = list(value)
    try:
        vals = [float(p) for p in parts]
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} must be one number or three, separated by /"
                          ) from None
    if len(vals) == 1:
        vals *= 3
    if len(vals) != 3 or not all(np.isfinite(vals)):
        raise ConfigError(f"{name}={value!r} must be one number or three, separated by /")
    return (vals[0], vals[1], vals[2])


class OnnxExtractor(ImageExtractor):
    """Features from your own ONNX image encoder (a CLIP, DINOv2 or other export).

    Runs an ONNX model file you have (for example the vision tower of CLIP or a DINOv2 backbone
    exported with ``torch.onnx.export`` or Hugging Face Optimum) on every image with ONNX
    Runtime on all CPU cores, and uses its output vector as the image's features; needs the
    ``cnn`` extra (onnxruntime). Set the input size and normalisation the model was trained
    with; a 3-D output (tokens) or 4-D output (feature maps) is pooled to one vector.

    Parameters
    ----------
    path : str
        The ``.onnx`` file (``onnx:/models/dinov2-small.onnx``).
    size : int or None, default=None
        Input side in pixels; ``None``: the model's own when its input has a fixed size, else 224.
    norm : {"imagenet", "clip", "inception", "none"}, default="imagenet"
        Named per-channel mean/std applied to pixels scaled to 0..1 (DINOv2: imagenet; OpenAI
        CLIP: clip; SigLIP: inception).
    mean, std : str or None, default=None
        Three numbers separated by ``/`` (``mean=0.5/0.5/0.5``; a comma separates steps in a
        ``--features`` spec) overriding ``norm``'s.
    scale : float, default=255.0
        Pixels are divided by this before the normalisation (1.0: the model wants 0..255).
    layout : {"auto", "nchw", "nhwc"}, default="auto"
        Axis order of the input; ``auto``: NHWC when the input's last axis is 3, else NCHW.
    bgr : bool, default=False
        Feed channels in BGR order (models exported from OpenCV/Caffe).
    crop : bool, default=False
        Resize the shorter side to ``size`` and crop the centre (as CLIP's preprocessing);
        ``False``: the whole image is resized to ``size`` x ``size``.
    input : str or None, default=None
        Name of the image input; ``None``: the model's only (or first) 4-D input.
    output : str or None, default=None
        Name of the output to use; ``None``: the first.
    pooling : {"auto", "cls", "mean", "max"}, default="auto"
        How a 3-D (n, tokens, d) or 4-D (n, c, h, w) output becomes one vector: ``auto`` is
        ``cls`` (the first token) for 3-D and ``mean`` over positions for 4-D.
    l2 : bool, default=False
        Scale each feature vector to unit length.
    batch_size : int, default=16
        Images per ONNX Runtime call (memory, not results).
    n_threads : int or None, default=None
        ONNX Runtime threads; ``None``: every core this process may use.

    Attributes
    ----------
    input_name_, output_name_ : str
        The input and output used.
    output_dim_ : int
        Length of the feature vectors.

    Examples
    --------
    >>> ext = OnnxExtractor("dinov2-small.onnx", size=224, norm="imagenet")  # doctest: +SKIP
    >>> ext.fit_transform(images).shape  # doctest: +SKIP
    (10, 384)
    """

    version = "1"

    def __init__(self, path: str | None = None, size: int | None = None, norm: str = "imagenet",
                 mean: str | None = None, std: str | None = None, scale: float = 255.0,
                 layout: str = "auto", bgr: bool = False, crop: bool = False,
                 input: str | None = None, output: str | None = None, pooling: str = "auto",
                 l2: bool = False, batch_size: int = 16, n_threads: int | None = None) -> None:
        self.path = path
        self.size = size
        self.norm = norm
        self.mean = mean
        self.std = std
        self.scale = scale
        self.layout = layout
        self.bgr = bgr
        self.crop = crop
        self.input = input
        self.output = output
        self.pooling = pooling
        self.l2 = l2
        self.batch_size = batch_size
        self.n_threads = n_threads

    # -- checks, before any image -------------------------------------------------------------
    def _validate_params_(self) -> None:
        wanted = self._wanted()
        if getattr(self, "_checked_for_", None) == wanted:
            return
        if self.norm not in NORMALISATIONS:
            raise ConfigError(f"norm={self.norm!r}; valid: {', '.join(NORMALISATIONS)}")
        mean, std = NORMALISATIONS[self.norm]
        mean = _triple(self.mean, "mean") or mean
        std = _triple(self.std, "std") or std
        if any(s == 0 for s in std):
            raise ConfigError(f"std={std} must not hold a zero")
        for name, value, valid in (("layout", self.layout, LAYOUTS),
                                   ("pooling", self.pooling, POOLINGS)):
            if value not in valid:
                raise ConfigError(f"{name}={value!r}; valid: {', '.join(valid)}")
        if self.size is not None and (isinstance(self.size, bool) or not isinstance(
                self.size, (int, np.integer)) or self.size < 8):
            raise ConfigError(f"size={self.size!r} must be an integer of at least 8 or None")
        for name in ("batch_size", "n_threads"):
            v = getattr(self, name)
            if (v is not None or name == "batch_size") and (
                    isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
                raise ConfigError(f"{name}={v!r} must be a positive integer")
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)) \
                or not self.scale > 0:
            raise ConfigError(f"scale={self.scale!r} must be a positive number")
        if importlib.util.find_spec("onnxruntime") is None:
            raise MissingExtraError(_MISSING, "cnn")
        self._mean_ = np.asarray(mean, np.float32)
        self._std_ = np.asarray(std, np.float32)
        self._open_session()
        self._checked_for_ = wanted

    def _wanted(self) -> tuple[Any, ...]:
        return tuple(sorted((k, repr(v)) for k, v in self.get_params().items()))

    def _open_session(self) -> None:
        import onnxruntime as ort

        if not self.path:
            raise ConfigError("onnx needs the model file: --features onnx:PATH")
        path = Path(str(self.path)).expanduser()
        if not path.is_file():
            raise ConfigError(f"onnx: {path}: no such file" if not path.exists() else
                              f"onnx: {path}: not a file")
        opts = ort_session_options(ort, int(self.n_threads or _n_cpus()))
        opts.log_severity_level = 4
        try:
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for a bad file
            first = " ".join(str(exc).split())[:200]
            raise ConfigError(f"onnx: {path}: not an ONNX model ONNX Runtime can load ({first})"
                              ) from None
        inputs = sess.get_inputs()
        if self.input is not None:
            chosen = [i for i in inputs if i.name == self.input]
            if not chosen:
                raise ConfigError(f"onnx: {path}: no input named {self.input!r}; inputs: "
                                  f"{', '.join(i.name for i in inputs)}")
        else:
            chosen = [i for i in inputs if len(i.shape) == 4] or inputs[:1]
        if not chosen:
            raise ConfigError(f"onnx: {path}: the model has no input")
        inp = chosen[0]
        others = [i.name for i in inputs if i.name != inp.name]
        if len(inp.shape) != 4:
            raise ConfigError(f"onnx: {path}: input {inp.name!r} has shape {inp.shape} (rank "
                              f"{len(inp.shape)}); an image encoder takes a rank-4 batch of images"
                              " (n, 3, h, w) or (n, h, w, 3)")
        if others:
            raise ConfigError(f"onnx: {path}: the model needs other inputs too "
                              f"({', '.join(others)}); export the image encoder alone")
        shape = list(inp.shape)
        layout = self.layout
        if layout == "auto":
            layout = "nhwc" if shape[3] == 3 else "nchw"
        ch = shape[1] if layout == "nchw" else shape[3]
        hw = shape[2:4] if layout == "nchw" else shape[1:3]
        if isinstance(ch, int) and ch != 3:
            raise ConfigError(f"onnx: {path}: input {inp.name!r} has {ch} channels in layout "
                              f"{layout} (shape {shape}); 3 (RGB) are needed")
        fixed = [d for d in hw if isinstance(d, int) and d > 0]
        size = int(self.size) if self.size is not None else (fixed[0] if fixed else 224)
        if fixed and any(d != size for d in fixed):
            raise ConfigError(f"onnx: {path}: input {inp.name!r} is fixed at {hw[0]}x{hw[1]}; "
                              f"size={size} does not fit it")
        if "uint8" in inp.type:
            dtype = "uint8"
        elif "float16" in inp.type:
            dtype = "float16"
        elif "float" in inp.type:
            dtype = "float32"
        else:
            raise ConfigError(f"onnx: {path}: input {inp.name!r} is {inp.type}; an image input is "
                              "float or uint8")
        outs = sess.get_outputs()
        names = [o.name for o in outs]
        if self.output is not None and self.output not in names:
            raise ConfigError(f"onnx: {path}: no output named {self.output!r}; outputs: "
                              f"{', '.join(names)}")
        out_name = self.output or names[0]
        self._session_, self._layout_, self._side_, self._dtype_ = sess, layout, size, dtype
        self.input_name_, self.output_name_ = inp.name, out_name
        batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
        self._fixed_batch_ = batch
        # the feature length, from one blank image (an output's length is often symbolic)
        probe = self._run(np.full((batch or 1, size, size, 3), 255, np.uint8))
        self.output_dim_ = int(probe.shape[1])

    # -- the work -------------------------------------------------------------------------------
    def _pool(self, y: np.ndarray) -> np.ndarray:
        if y.ndim == 2:
            return y
        pooling = self.pooling
        if y.ndim == 3:  # (n, tokens, d)
            pooling = "cls" if pooling == "auto" else pooling
            if pooling == "cls":
                return y[:, 0, :]
            return y.mean(axis=1) if pooling == "mean" else y.max(axis=1)
        if y.ndim == 4:  # (n, c, h, w)
            if pooling == "cls":
                raise ConfigError(f"onnx: pooling='cls' needs a 3-D (tokens) output; "
                                  f"{self.output_name_!r} has shape {y.shape}")
            flat = y.reshape(y.shape[0], y.shape[1], -1)
            return flat.max(axis=2) if pooling == "max" else flat.mean(axis=2)
        if y.ndim == 1:
            return y[:, None]
        raise ConfigError(f"onnx: output {self.output_name_!r} has shape {y.shape}; pooling "
                          "handles 2-, 3- and 4-D outputs")

    def _run(self, batch_u8: np.ndarray, release: bool = False) -> np.ndarray:
        """uint8 (n, size, size, 3) -> pooled float32 (n, d); ``release``: the call's last
        batch (ONNX Runtime's arena gives its memory back after it)."""
        import onnxruntime as ort

        ro = ort_release_options(ort) if release else None
        x = batch_u8[..., ::-1] if self.bgr else batch_u8
        if self._dtype_ == "uint8":
            x = np.ascontiguousarray(x)
        else:
            x = x.astype(np.float32) / np.float32(self.scale)
            x -= self._mean_[::-1] if self.bgr else self._mean_
            x /= self._std_[::-1] if self.bgr else self._std_
            x = x.astype(self._dtype_, copy=False)
        if self._layout_ == "nchw":
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        n = len(x)
        fixed = self._fixed_batch_
        if fixed and n != fixed:  # a model exported with a fixed batch: pad the last one
            pad = np.zeros((fixed - n % fixed) % fixed, *x.shape[1:]).astype(x.dtype)
            x = np.concatenate([x, pad])
            parts = [self._session_.run([self.output_name_], {self.input_name_: x[i:i + fixed]},
                                        ro if i + fixed >= len(x) else None)[0]
                     for i in range(0, len(x), fixed)]
            y = np.concatenate(parts)[:n]
        else:
            y = self._session_.run([self.output_name_], {self.input_name_: x}, ro)[0]
        y = self._pool(np.asarray(y, dtype=np.float32))
        if self.l2:
            norms = np.linalg.norm(y, axis=1, keepdims=True)
            y = y / np.maximum(norms, 1e-12)
        return y.astype(np.float32, copy=False)

    def _prepare(self, img: Image.Image) -> np.ndarray:
        img = flatten_to_rgb(img)
        side = self._side_
        if self.crop:
            w, h = img.size
            s = side / min(w, h)
            nw, nh = max(side, round(w * s)), max(side, round(h * s))
            if (nw, nh) != img.size:
                img = img.resize((nw, nh), Image.Resampling.BICUBIC, reducing_gap=3.0)
            left, top = (nw - side) // 2, (nh - side) // 2
            img = img.crop((left, top, left + side, top + side))
        elif img.size != (side, side):
            img = img.resize((side, side), Image.Resampling.BICUBIC, reducing_gap=3.0)
        return np.asarray(img, dtype=np.uint8)

    def _transform_images(self, images: list[Image.Image]) -> np.ndarray:
        out = np.empty((len(images), self.output_dim_), dtype=np.float32)
        step = int(self.batch_size)
        for start in range(0, len(images), step):
            chunk = np.stack([self._prepare(im) for im in images[start:start + step]])
            out[start:start + len(chunk)] = self._run(chunk, release=start + step >= len(images))
        return out

    @property
    def output_dim(self) -> int:
        self._validate_params_()
        return self.output_dim_

    def decode_side(self) -> int:
        """The longest side images need to be decoded at (the input size)."""
        self._validate_params_()
        return int(self._side_)

    def cache_key(self) -> str:
        """The parameters that change the features and a hash of the model file's content."""
        params = {k: v for k, v in self.get_params().items()
                  if k not in ("batch_size", "n_threads", "path")}
        payload = json.dumps({"cls": type(self).__name__, "version": self.version,
                              "params": params, "model": self._file_digest()},
                             sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def _file_digest(self) -> str:
        path = Path(str(self.path)).expanduser()
        try:
            st = path.stat()
        except OSError:  # not there (yet): the key of its name; the step refuses it in fit
            return f"missing:{path}"
        stamp = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        if getattr(self, "_digest_for_", None) != stamp:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            self._digest_, self._digest_for_ = h.hexdigest(), stamp
        return self._digest_

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the parameters, not the ONNX Runtime session (opened again on first use)."""
        state = dict(super().__getstate__())
        for k in ("_session_", "_checked_for_"):
            state.pop(k, None)
        return state


FEATURES.add("onnx", OnnxExtractor, primary="path", input="images")
