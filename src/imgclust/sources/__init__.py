"""Where images come from: folders, ``.npz`` arrays and bundled datasets."""
from __future__ import annotations

from pathlib import Path

from imgclust.errors import ConfigError, SourceError
from imgclust.sources.base import ArraySource, Source
from imgclust.sources.datasets import DATASETS, load_dataset, load_npz
from imgclust.sources.folder import FolderSource

DEFAULT_SOURCE = "dataset:digits"

__all__ = ["open_source", "Source", "ArraySource", "FolderSource", "DEFAULT_SOURCE", "DATASETS"]


def open_source(spec: str | Path = DEFAULT_SOURCE, labels: str | None = None) -> Source:
    """Open a source from what the user typed.

    Parameters
    ----------
    spec : str or Path
        ``dataset:NAME``, a path to an ``.npz`` file, or a folder of images.
    labels : {None, "folders"}
        ``"folders"``: first-level subfolders of a folder source are classes (evaluation only).

    Raises
    ------
    SourceError
        The path does not exist or cannot be read as a source.
    """
    spec = str(spec)
    if not spec:  # Path("") is the working directory: never what an empty argument meant
        raise ConfigError("the source is empty (''); give a folder, an .npz file or dataset:NAME")
    if labels not in (None, "folders", "none"):
        raise ConfigError(f"labels={labels!r}; valid: folders")
    if spec.startswith("dataset:"):
        return load_dataset(spec.split(":", 1)[1])
    path = Path(spec)
    if not path.exists():
        raise SourceError(f"{spec}: no such file or folder")
    if path.is_dir():
        return FolderSource(path, labels_from_folders=(labels == "folders"))
    if path.suffix.lower() == ".npz":
        if labels == "folders":
            raise ConfigError("--labels folders applies to a folder source, not an .npz file")
        return load_npz(path)
    raise SourceError(f"{spec}: not a folder, an .npz file or dataset:NAME")
