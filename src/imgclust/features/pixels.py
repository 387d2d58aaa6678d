"""Raw pixels: resize, optional grayscale, scale to [0, 1], flatten."""
from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from imgclust.features.base import ImageExtractor, Images, as_pil_list, flatten_to_rgb
from imgclust.features.registry import register


@register("pixels", primary="size", input="images")
class PixelExtractor(ImageExtractor):
    """Flattened pixels scaled to [0, 1].

    Parameters
    ----------
    size : int or None, default=None
        Resize every image to ``size`` x ``size`` (bilinear with antialiasing). ``None`` keeps
        the size of the first image seen by :meth:`fit` and resizes the others to it.
    gray : bool or None, default=None
        Convert to one luminance channel. ``None``: gray when that first image is gray.

    Attributes
    ----------
    image_size_ : tuple of int
        (width, height) every image is resized to, learned by :meth:`fit`.
    gray_ : bool
        Whether images are converted to gray, learned by :meth:`fit`.

    Examples
    --------
    >>> import numpy as np
    >>> PixelExtractor(size=4, gray=True).fit_transform(np.zeros((2, 8, 8))).shape
    (2, 16)
    """

    def __init__(self, size: int | None = None, gray: bool | None = None) -> None:
        self.size = size
        self.gray = gray

    def _validate_params_(self) -> None:
        if self.size is not None and (not isinstance(self.size, (int, np.integer)) or self.size < 1):
            raise ValueError(f"size={self.size!r} must be a positive integer or None")

    def fit(self, images: Images, y: Any = None) -> "PixelExtractor":
        """Fix the output size and colour from the first image, so every later batch agrees.

        Parameters
        ----------
        images : sequence of PIL images or array (n, H, W[, C])
            Only the first image is looked at (when ``size`` or ``gray`` is None).
        y : ignored

        Returns
        -------
        self
        """
        self._validate_params_()
        first = as_pil_list(images[:1])
        if first:
            self.image_size_, self.gray_ = self._resolve(first[0])
        return self

    def _resolve(self, first: Image.Image) -> tuple[tuple[int, int], bool]:
        if hasattr(self, "image_size_"):  # fitted: the same shape for every batch
            return self.image_size_, self.gray_
        size = (self.size, self.size) if self.size else first.size
        gray = self.gray if self.gray is not None else first.mode in ("L", "1", "LA", "I", "I;16", "F")
        return size, bool(gray)

    def output_dim_for(self, first: Image.Image | None) -> int:
        if first is None and not hasattr(self, "image_size_"):
            side = self.size or 0
            return side * side * (1 if self.gray else 3)
        (w, h), gray = self._resolve(first)
        return w * h * (1 if gray else 3)

    @property
    def output_dim(self) -> int:
        if self.size is None or self.gray is None:
            raise AttributeError("output_dim depends on the images when size or gray is None")
        return self.size * self.size * (1 if self.gray else 3)

    def _transform_images(self, images: list[Image.Image]) -> np.ndarray:
        size, gray = self._resolve(images[0])
        out = np.empty((len(images), size[0] * size[1] * (1 if gray else 3)), dtype=np.float32)
        for i, img in enumerate(images):
            img = img.convert("L") if gray and img.mode in ("L", "1") else flatten_to_rgb(img)
            if gray and img.mode != "L":
                img = img.convert("L")
            if img.size != size:
                img = img.resize(size, Image.Resampling.BILINEAR, reducing_gap=None)
            out[i] = np.asarray(img, dtype=np.float32).reshape(-1) / 255.0
        return out
