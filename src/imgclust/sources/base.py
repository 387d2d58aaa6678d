"""The source contract: what the pipeline asks of a folder, an array file or a dataset."""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import numpy as np
from PIL import Image

from imgclust.errors import DecodeError
from imgclust.model import ImageRecord, LoadFailure


class Source(ABC):
    """Images to read, one candidate id at a time, in a stable order.

    Attributes
    ----------
    spec : str
        What the user gave (path or ``dataset:NAME``).
    failures : list of LoadFailure
        Filled while images are read; a bad file never stops the run.
    """

    spec: str

    def __init__(self) -> None:
        self.failures: list[LoadFailure] = []

    @abstractmethod
    def candidates(self) -> list[str]:
        """Every id that will be tried, in order."""

    @abstractmethod
    def read(self, image_id: str) -> tuple[ImageRecord, Image.Image]:
        """Decode one image; raises :class:`DecodeError`."""

    def labels(self) -> dict[str, str] | None:
        """Ground-truth class of each id when the source has one (for evaluation only)."""
        return None

    def fingerprint(self) -> str:
        """A hash of the inputs, to tell whether a run directory was made from them."""
        h = hashlib.sha256(self.spec.encode("utf-8", "surrogateescape"))
        for c in self.candidates():
            h.update(c.encode("utf-8", "surrogateescape"))
        return h.hexdigest()[:16]

    def iter_batches(self, batch_size: int = 256, workers: int = 2
                     ) -> Iterator[tuple[list[ImageRecord], list[Image.Image]]]:
        """Decode in bounded batches; failures go to :attr:`failures`, never raise.

        Only one batch of decoded images is held at a time. Decoding runs on ``workers``
        threads (Pillow releases the GIL while it decodes).
        """
        ids = self.candidates()
        self.failures = []

        def one(i: str) -> tuple[ImageRecord, Image.Image] | LoadFailure:
            try:
                return self.read(i)
            except DecodeError as exc:
                return LoadFailure(path=self.describe(i), reason=exc.reason)
            except Exception as exc:  # noqa: BLE001 - one file must never abort a scan
                # decode_image raises only DecodeError (fuzz-tested); anything else is a bug in
                # imgclust or Pillow, recorded with its type so it is seen, not dropped.
                return LoadFailure(path=self.describe(i), reason=(
                    f"unexpected error while reading (please report): {type(exc).__name__}: {exc}"))

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for start in range(0, len(ids), batch_size):
                recs, imgs = [], []
                for res in pool.map(one, ids[start:start + batch_size]):
                    if isinstance(res, LoadFailure):
                        self.failures.append(res)
                    else:
                        recs.append(res[0])
                        imgs.append(res[1])
                yield recs, imgs

    def describe(self, image_id: str) -> str:
        """How a failure names the image (the file path for folders)."""
        return image_id


class ArraySource(Source):
    """Images held in one array of shape (n, H, W) or (n, H, W, C).

    ``uint8`` pixels are used as they are. Other numbers (integers, floats, bool) share one
    scale for the whole array, so that contrast between images is kept: values in [0, 1] are
    multiplied by 255, values above 1 divided by the array's maximum, and an array with
    negative values (standardised data) is mapped from its minimum..maximum onto 0..255.

    Raises
    ------
    ValueError
        A wrong shape, an empty image, a dtype that is not numbers (strings, complex, records),
        NaN or infinite values (one +inf would turn every image black), or a label count that
        is not the image count. The message names the array and the values.
    """

    def __init__(self, spec: str, images: np.ndarray, labels: np.ndarray | None = None,
                 label_names: list[str] | None = None) -> None:
        super().__init__()
        if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] not in (1, 3, 4)):
            raise ValueError(
                f"{spec}: images must be (N, H, W) or (N, H, W, C), got {images.shape}")
        if images.dtype.kind not in "biuf":
            raise ValueError(f"{spec}: images of dtype {images.dtype}; expected real numbers "
                             "(uint8, other integers, floats or bool)")
        if len(images) == 0:
            raise ValueError(f"{spec}: no images (shape {images.shape})")
        if 0 in images.shape[1:3]:
            raise ValueError(f"{spec}: images of {images.shape[1]} x {images.shape[2]} pixels "
                             "(height x width); an image needs at least one pixel")
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"{spec}: {len(labels)} labels for {len(images)} images")
        self.spec = spec
        self.images = images
        self._labels = labels
        self._label_names = label_names
        self._offset, self._scale = 0.0, 255.0
        if images.dtype != np.uint8:
            if images.dtype.kind == "f":
                bad = ~np.isfinite(images)
                if bad.any():
                    n_bad = int(bad.sum())
                    n_img = int(bad.reshape(len(images), -1).any(axis=1).sum())
                    raise ValueError(
                        f"{spec}: {n_bad} pixel value(s) are NaN or infinite, in {n_img} of "
                        f"{len(images)} images; fix the array (numpy.nan_to_num, or drop those "
                        "images) and try again")
            lo, hi = float(images.min()), float(images.max())
            if lo < 0:  # standardised data: its whole range, not only the positive half
                self._offset, self._scale = lo, (255.0 / (hi - lo) if hi > lo else 1.0)
            else:
                self._scale = 255.0 if hi <= 1.0 else 255.0 / hi

    def candidates(self) -> list[str]:
        return [str(i) for i in range(len(self.images))]

    def read(self, image_id: str) -> tuple[ImageRecord, Image.Image]:
        a = self.images[int(image_id)]
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[:, :, 0]
        if a.dtype != np.uint8:
            a = (a.astype(np.float64) - self._offset) * self._scale
            a = np.clip(a, 0, 255).round().astype(np.uint8)
        img = Image.fromarray(a)
        rec = ImageRecord(id=image_id, path=None, width=img.width, height=img.height, mode=img.mode)
        return rec, img

    def labels(self) -> dict[str, str] | None:
        if self._labels is None:
            return None
        names = self._label_names
        return {str(i): (names[int(v)] if names else str(v)) for i, v in enumerate(self._labels)}

    def fingerprint(self) -> str:
        """A hash of the pixel data (not of the file name: a moved array file keeps it)."""
        a = np.ascontiguousarray(self.images)
        h = hashlib.sha256(f"array {a.shape} {a.dtype}".encode())
        h.update(a.tobytes())
        return h.hexdigest()[:16]
