"""imgclust: unsupervised image classification.

Light on purpose: importing the package pulls in no scikit-learn, torch, plotting or web code.
``imgclust.run`` and ``imgclust.compare`` are loaded on first use.
"""
from __future__ import annotations

from typing import Any

from imgclust._version import __version__  # noqa: E402

__all__ = ["__version__", "run", "compare", "ImgclustError"]

from imgclust.errors import ImgclustError  # noqa: E402  (tiny, no heavy imports)


def __getattr__(name: str) -> Any:  # PEP 562 lazy re-exports
    if name in ("run", "compare", "Result"):
        from imgclust import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'imgclust' has no attribute {name!r}")
