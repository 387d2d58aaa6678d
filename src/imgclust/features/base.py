"""What every image extractor shares.

An image extractor is a scikit-learn transformer whose input is images: a sequence of
``PIL.Image.Image`` or an array of shape (n_images, height, width[, channels]). It declares
``output_dim`` and ``cache_key()`` so its features can be cached and reused.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Sequence, Union

import numpy as np
from PIL import Image
from sklearn.base import BaseEstimator, TransformerMixin

# one conversion to RGB for decoding and features alike (alpha onto white, 16-bit scaled)
from imgclust.sources.decode import to_rgb as flatten_to_rgb  # noqa: F401

Images = Union[Sequence[Image.Image], np.ndarray]


def ort_session_options(ort: Any, n_threads: int) -> Any:
    """ONNX Runtime session options shared by the CNN and ``onnx:`` steps.

    Threads that wait sleep instead of spinning (``allow_spinning=0``): on a machine that is
    busy with anything else, spinning threads take the cores the working ones need.
    """
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = int(n_threads)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def ort_release_options(ort: Any) -> Any:
    """Run options for the last batch of a call: ONNX Runtime's memory arena gives back what the
    batches grew it to (~180 MB for EfficientNet-Lite0 on 16 images at 224 px), so the next
    images' decoding does not stack on top of it. Measured: the same speed as keeping it."""
    ro = ort.RunOptions()
    ro.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return ro


def array_to_pil(a: np.ndarray) -> Image.Image:
    """One image array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) to a Pillow image.

    Floats in [0, 1] are scaled by 255; other ranges are scaled by their own maximum
    (scikit-learn's digits are 0..16). Integer arrays wider than 8 bits are scaled to 8 bits.
    """
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ValueError(f"an image array must be (H, W) or (H, W, 3|4), got shape {a.shape}")
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        hi = float(np.nanmax(a)) if a.size else 0.0
        scale = 255.0 if hi <= 1.0 else 255.0 / hi
        a = np.clip(np.nan_to_num(a) * scale, 0, 255).round().astype(np.uint8)
    return Image.fromarray(a)


def as_pil_list(images: Images) -> list[Image.Image]:
    """Accept a sequence of Pillow images or an image array and return Pillow images."""
    if isinstance(images, np.ndarray):
        if images.ndim not in (3, 4):
            raise ValueError(
                f"expected images of shape (n, H, W[, C]), got an array of shape {images.shape}"
            )
        scale_max = float(images.max()) if images.dtype != np.uint8 and images.size else None
        out = []
        for a in images:
            if scale_max is not None:
                # scale by the whole batch's maximum so that images keep their relative contrast
                a = a.astype(np.float64) / (scale_max if scale_max > 1.0 else 1.0)
            out.append(array_to_pil(a))
        return out
    return list(images)


class ImageExtractor(TransformerMixin, BaseEstimator):
    """Base class of steps whose input is images.

    Subclasses implement :meth:`_transform_images` (a list of Pillow images in, a float32
    array out) and ``output_dim``; the default :meth:`fit` learns nothing.
    """

    #: bump when the computation changes, so cached features are not reused
    version: str = "1"

    def fit(self, images: Images, y: Any = None) -> "ImageExtractor":
        """Nothing to learn by default; returns ``self``."""
        self._validate_params_()
        return self

    def _validate_params_(self) -> None:
        """Check parameters (into private state); override in subclasses."""

    def transform(self, images: Images) -> np.ndarray:
        """Images to an array of shape (n_images, output_dim), dtype float32."""
        self._validate_params_()
        imgs = as_pil_list(images)
        if not imgs:
            return np.zeros((0, self.output_dim_for(None)), dtype=np.float32)
        return np.asarray(self._transform_images(imgs), dtype=np.float32)

    def _transform_images(self, images: list[Image.Image]) -> np.ndarray:
        raise NotImplementedError

    def output_dim_for(self, first: Image.Image | None) -> int:
        """Feature length; may depend on the first image when the size is 'native'."""
        return int(self.output_dim)

    @property
    def output_dim(self) -> int:  # pragma: no cover - subclasses override
        raise NotImplementedError

    def cache_key(self) -> str:
        """A stable key of the class, its version and its parameters."""
        payload = json.dumps(
            {"cls": type(self).__name__, "version": self.version, "params": self.get_params()},
            sort_keys=True, default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def __sklearn_tags__(self):  # images in, not a numeric 2-D array
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        return tags
