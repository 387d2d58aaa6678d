"""imgclust: unsupervised image classification.

Light on purpose: importing the package pulls in no scikit-learn, torch, plotting or web code.
``imgclust.run``, ``imgclust.compare``, ``imgclust.load`` and ``imgclust.recluster`` are
loaded on first use.
"""
from __future__ import annotations

from imgclust._version import __version__
from imgclust.errors import ImgclustError

__all__ = ["__version__", "run", "compare", "load", "recluster", "Result", "ImgclustError"]

_LAZY = ("run", "compare", "load", "recluster", "Result")


def __getattr__(name: str) -> object:  # PEP 562 lazy re-exports
    if name in _LAZY:
        import importlib

        # importing the subpackage binds imgclust.run to it; it is callable (run/__init__.py)
        pkg = importlib.import_module("imgclust.run")
        return pkg if name == "run" else getattr(pkg, name)
    raise AttributeError(f"module 'imgclust' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
