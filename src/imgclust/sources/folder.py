"""A folder of image files, read recursively; optional class labels from first-level folders."""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from PIL import Image

from imgclust.errors import SourceError
from imgclust.model import ImageRecord, LoadFailure
from imgclust.sources.base import Source
from imgclust.sources.decode import MAX_PIXELS, MAX_SIDE, decode_image

#: Files skipped silently: operating-system litter, not something the user meant as an image.
IGNORED_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
#: the keys every run.json of imgclust has (imgclust.run.rundir; sources sit below run/, so the
#: names are repeated here): a folder holding one is a run directory, not images
RUN_MARKER = "run.json"
RUN_MARKER_KEYS = ("format", "imgclust_version", "inputs")

log = logging.getLogger(__name__)


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` holds a ``run.json`` written by imgclust (a user's own run.json does not
    have imgclust's keys)."""
    marker = os.path.join(path, RUN_MARKER)
    if not os.path.isfile(marker):
        return False
    try:
        with open(marker, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and all(k in data for k in RUN_MARKER_KEYS)


class FolderSource(Source):
    """Every file below ``root`` (hidden files and folders skipped), sorted by relative path.

    Files that are not images are tried all the same and reported with the reason, so nothing
    is dropped silently. Symlinked folders are not followed (no loops); symlinked files are.
    A subfolder that is an imgclust run directory (``--out`` inside the source) is skipped, so a
    rerun does not cluster the thumbnails and exported copies of the run before.

    Parameters
    ----------
    root : str or Path
    labels_from_folders : bool
        Use each image's first-level subfolder as its class (for evaluation only).
    max_side, max_pixels, min_side : int
        See :func:`~imgclust.sources.decode.decode_image`; ``min_side`` is the size the features
        need (:meth:`set_decode_side`).
    """

    def __init__(self, root: str | Path, labels_from_folders: bool = False,
                 max_side: int | None = MAX_SIDE, max_pixels: int = MAX_PIXELS,
                 min_side: int | None = None) -> None:
        super().__init__()
        # absolute (not resolved: a symlinked root keeps its name), so that the run directory
        # finds its images again from any working directory (summary.json "source")
        self.root = Path(os.path.abspath(root))
        if not self.root.is_dir():
            raise SourceError(f"{root}: not a folder")
        self.spec = str(self.root)
        self.labels_from_folders = labels_from_folders
        self.max_side = max_side
        self.max_pixels = max_pixels
        self.min_side = min_side
        self._ids: list[str] | None = None
        self.scan_failures: list[LoadFailure] = []

    def _scan(self) -> list[str]:
        ids: list[str] = []
        self.scan_failures = []

        def onerror(exc: OSError) -> None:
            self.scan_failures.append(LoadFailure(str(exc.filename),
                                                  f"cannot list folder: {exc.strerror}"))

        for dirpath, dirnames, filenames in os.walk(self.root, onerror=onerror, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for d in [d for d in dirnames if is_run_dir(os.path.join(dirpath, d))]:
                log.info("%s: an imgclust run directory, not read as images",
                         os.path.join(dirpath, d))
                dirnames.remove(d)
            for d in dirnames:
                full = os.path.join(dirpath, d)
                if os.path.islink(full):
                    self.scan_failures.append(LoadFailure(full, "symlinked folder not followed"))
            rel = os.path.relpath(dirpath, self.root)  # once a folder, not once a file
            for name in sorted(filenames):
                if name.startswith(".") or name in IGNORED_NAMES:
                    continue
                ids.append(name if rel == "." else os.path.join(rel, name))
        ids.sort()
        if not ids and not self.scan_failures:
            raise SourceError(f"{self.root}: no files found (the folder is empty)")
        return ids

    def candidates(self) -> list[str]:
        if self._ids is None:
            self._ids = self._scan()
        return self._ids

    def fingerprint(self) -> str:
        """A hash of every candidate's relative path, size and modification time.

        ``stat`` only, no file is read: a file edited, replaced, added or removed gives another
        fingerprint; moving the whole folder elsewhere keeps it, so a run can be resumed from
        the new place.
        """
        h = hashlib.sha256()
        for c in self.candidates():
            try:
                st = os.stat(self.describe(c))
                info = f"{st.st_size}:{st.st_mtime_ns}"
            except OSError as exc:  # a dangling link or a file gone since the scan
                info = f"unreadable:{exc.errno}"
            h.update(f"{c}\0{info}\n".encode("utf-8", "surrogateescape"))
        return h.hexdigest()[:16]

    def describe(self, image_id: str) -> str:
        # a string join (ids are normalised relative paths): pathlib's / took 1-2 s per pass
        # over 100,000 ids, and a run makes several passes
        return os.path.join(str(self.root), image_id)

    def set_decode_side(self, side: int | None) -> None:
        """Decode images only as large as the features need: shorter side ``side`` (within
        ``max_side``); ``None``: up to ``max_side``. Affects the batches not yet read."""
        self.min_side = None if side is None else int(side)

    def read(self, image_id: str) -> tuple[ImageRecord, Image.Image]:
        return decode_image(str(self.root / image_id), image_id, max_side=self.max_side,
                            max_pixels=self.max_pixels, min_side=self.min_side)

    def iter_batches(self, batch_size: int = 256, workers: int = 2):
        ids = self.candidates()  # noqa: F841 - scan first so scan failures are known
        for batch in super().iter_batches(batch_size, workers):
            yield batch
        self.failures = self.scan_failures + self.failures

    def labels(self) -> dict[str, str] | None:
        if not self.labels_from_folders:
            return None
        out = {}
        for i in self.candidates():
            parts = Path(i).parts
            if len(parts) < 2:
                continue  # a file directly in root has no class
            out[i] = parts[0]
        if not out:
            raise SourceError(f"{self.root}: --labels folders needs images in class subfolders")
        return out
