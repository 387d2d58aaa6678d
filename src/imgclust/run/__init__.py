"""A run: its stages (extract -> cluster -> score -> write), its directory (:class:`RunDir`),
its saved model, and what acts on a finished run (load, assign, recluster).

Imports are lazy so that ``import imgclust.run.rundir`` stays light.
"""
from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["run", "compare", "load", "recluster", "Result", "RunDir"]


def __getattr__(name: str) -> Any:
    if name in ("run", "compare"):
        from imgclust.run import pipeline

        return getattr(pipeline, name)
    if name in ("load", "Result"):
        from imgclust.run import result

        return getattr(result, name)
    if name == "recluster":
        from imgclust.run.reclustering import recluster

        return recluster
    if name == "RunDir":
        from imgclust.run.rundir import RunDir

        return RunDir
    raise AttributeError(f"module 'imgclust.run' has no attribute {name!r}")


class _CallableRun(types.ModuleType):
    """``imgclust.run`` is both this package and the function that runs the pipeline: once any
    ``imgclust.run.*`` module is imported, Python binds the package to ``imgclust.run``, so the
    package itself forwards calls to :func:`imgclust.run.pipeline.run`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from imgclust.run.pipeline import run

        return run(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableRun
