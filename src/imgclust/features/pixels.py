"""Raw pixels: resize, optional grayscale, scale to [0, 1], flatten."""
from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image
from sklearn.exceptions import NotFittedError

from imgclust.features.base import ImageExtractor, Images, as_pil_list, flatten_to_rgb
from imgclust.features.registry import register

#: largest ``size``: 1024 x 1024 x 3 is 3 million features (12 MB) per image already
MAX_SIZE = 1024
#: Pillow modes that hold one channel
GRAY_MODES = ("L", "1", "LA", "I", "I;16", "F")


@register("pixels", primary="size", input="images")
class PixelExtractor(ImageExtractor):
    """Raw pixels, resized, scaled to [0, 1] and flattened.

    Every image is resized to one size (``size`` x ``size``, or the first image's), optionally
    made gray, its pixel values scaled to [0, 1] and laid out in one row.

    Parameters
    ----------
    size : int or None, default=None
        Resize every image to ``size`` x ``size`` (bilinear with antialiasing). ``None`` keeps
        the size of the first image seen by :meth:`fit` and resizes the others to it.
    gray : bool or None, default=None
        Convert to one luminance channel. ``None``: gray when that first image is gray.
        With either left ``None``, :meth:`transform` needs :meth:`fit` first
        (``NotFittedError`` otherwise); with both given it needs none.

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


    def decode_side(self) -> int | None:
        """The shorter side images need when decoded: ``size`` (every image is resized to
        ``size`` x ``size``), or None (the first image's size is kept: decode as they come)."""
        return None if self.size is None else int(self.size)
    def _validate_params_(self) -> None:
        """Check the parameters (no images needed)."""
        if self.size is not None:
            if isinstance(self.size, bool) or not isinstance(self.size, (int, np.integer)) \
                    or self.size < 1:
                raise ValueError(f"size={self.size!r} must be a positive integer or None")
            if self.size > MAX_SIZE:
                raise ValueError(f"size={self.size} is more than {MAX_SIZE} pixels a side "
                                 f"({MAX_SIZE * MAX_SIZE * 3:,} features per colour image at "
                                 "most); give a smaller size, or use cnn for large images")
        if self.gray is not None and not isinstance(self.gray, (bool, np.bool_)):
            raise ValueError(f"gray={self.gray!r} must be true, false or None")

    def fit(self, images: Images, y: Any = None) -> "PixelExtractor":
        """Fix the output size and colour from the first image, so every later batch agrees.

        A refit learns them again from its own first image.

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
        for name in ("image_size_", "gray_"):  # nothing of an earlier fit survives a refit
            self.__dict__.pop(name, None)
        first = as_pil_list(images[:1])
        if first:
            self.image_size_, self.gray_ = self._learn(first[0])
        elif self.size is not None and self.gray is not None:
            self.image_size_, self.gray_ = (self.size, self.size), bool(self.gray)
        return self

    def _learn(self, first: Image.Image) -> tuple[tuple[int, int], bool]:
        size = (self.size, self.size) if self.size else first.size
        gray = self.gray if self.gray is not None else first.mode in GRAY_MODES
        return size, bool(gray)

    def _settings(self) -> tuple[tuple[int, int], bool]:
        """(width, height) and gray: fitted, or given by both parameters (then no fit needed)."""
        if hasattr(self, "image_size_"):
            return self.image_size_, self.gray_
        if self.size is not None and self.gray is not None:
            return (self.size, self.size), bool(self.gray)
        raise NotFittedError("This PixelExtractor is not fitted yet: with size=None or gray=None "
                             "it learns them from the first image in fit()")

    def __sklearn_is_fitted__(self) -> bool:
        try:
            self._settings()
        except NotFittedError:
            return False
        return True

    def output_dim_for(self, first: Image.Image | None) -> int:
        """Feature length of the fitted (or fully specified) extractor; ``first`` is unused."""
        (w, h), gray = self._settings()
        return w * h * (1 if gray else 3)

    @property
    def output_dim(self) -> int:
        if self.size is None or self.gray is None:
            raise AttributeError("output_dim depends on the images when size or gray is None")
        return self.size * self.size * (1 if self.gray else 3)

    def _transform_images(self, images: list[Image.Image]) -> np.ndarray:
        size, gray = self._settings()
        out = np.empty((len(images), size[0] * size[1] * (1 if gray else 3)), dtype=np.float32)
        for i, img in enumerate(images):
            img = img.convert("L") if gray and img.mode in ("L", "1") else flatten_to_rgb(img)
            if gray and img.mode != "L":
                img = img.convert("L")
            if img.size != size:
                img = img.resize(size, Image.Resampling.BILINEAR, reducing_gap=None)
            out[i] = np.asarray(img, dtype=np.float32).reshape(-1) / 255.0
        return out
