"""The one exception hierarchy of imgclust.

The CLI turns an :class:`ImgclustError` into a one-line message and exit code 1;
:class:`ConfigError` (a usage mistake) into exit code 2.
"""
from __future__ import annotations


class ImgclustError(Exception):
    """Base class of every error imgclust raises on purpose."""


class ConfigError(ImgclustError, ValueError):
    """The request cannot be run as given (unknown method, too few images, bad option)."""


class SourceError(ImgclustError):
    """A source (folder, array file, dataset) cannot be opened at all."""


class DecodeError(ImgclustError):
    """One image file cannot be read; carries the path and the reason."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class RunDirError(ImgclustError):
    """A run directory is missing, refused (not empty) or was made from other inputs."""


class MissingExtraError(ImgclustError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, what: str, extra: str) -> None:
        super().__init__(f"{what} needs the optional extra: pip install \"imgclust[{extra}]\"")
        self.extra = extra
