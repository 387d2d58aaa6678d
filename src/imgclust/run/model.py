"""The saved model: fitted feature steps, the clusterer, and what assigning new images needs.

Written into the run directory as ``model.npz`` by :mod:`imgclust.run._safe_state`: data only
(JSON for the structure, ``.npy`` arrays for the numbers), rebuilt as instances of scikit-learn's
and imgclust's estimator classes and nothing else, so loading an untrusted run directory never
runs code from it (unlike pickle or joblib); any other class makes loading refuse, naming it.
(skops does the same, but importing it costs 5 s of CPU in every process: see that module.)

Only the steps that can transform a new image exactly as they transformed the run's images are
saved (the *assign prefix*): UMAP's and t-SNE's embeddings are non-parametric, so new images are
assigned in the space before them (``assign-features.npy``), where the run's own images are
reproduced exactly.
"""
from __future__ import annotations

import logging
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from imgclust._version import __version__
from imgclust.errors import RunDirError

log = logging.getLogger(__name__)

#: raised when what model.npz holds changes shape; an older format is refused
MODEL_FORMAT = 1
#: steps whose output for a new image differs from what they gave the run's images
NON_INDUCTIVE = ("umap", "tsne")


def versions() -> dict[str, str]:
    """Versions of Python, imgclust and the libraries that shape results."""
    out = {"python": platform.python_version(), "imgclust": __version__}
    for pkg in ("numpy", "scipy", "scikit-learn", "pillow", "umap-learn", "onnxruntime"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def assign_prefix(step_specs: list[str]) -> int:
    """How many leading steps transform new images exactly (all up to the first UMAP/t-SNE)."""
    from imgclust.registry import parse_spec

    for i, s in enumerate(step_specs):
        if parse_spec(s)[0] in NON_INDUCTIVE:
            return i
    return len(step_specs)


def model_bytes(steps: list[tuple[str, Any]], clusterer: Any,
                step_specs: list[str] | tuple[str, ...] | None = None) -> bytes:
    """Serialise the assign prefix of ``steps`` and the clusterer (data only).

    ``step_specs``: every step of the run, when ``steps`` holds only the saved prefix (a
    reloaded run); by default the specs of ``steps``.
    """
    from imgclust.run import _safe_state as sio

    n = assign_prefix([s for s, _ in steps])
    payload: dict[str, Any] = {"format": MODEL_FORMAT, "imgclust_version": __version__,
                               "versions": versions(),
                               "steps": [[s, est] for s, est in steps[:n]],
                               "step_specs": list(step_specs) if step_specs is not None
                               else [s for s, _ in steps], "clusterer": None}
    try:
        payload["clusterer"] = clusterer
        return sio.dumps(payload)
    except sio.UnsafeStateError as exc:  # a third-party clusterer holding a function…
        log.warning("the fitted clusterer (%s) cannot be saved (%s); new images are still "
                    "assigned by their nearest run images", type(clusterer).__name__, exc)
        payload["clusterer"] = None
        return sio.dumps(payload)


def load_model(path: str | Path) -> dict[str, Any]:
    """Load ``model.npz``, building only scikit-learn's and imgclust's estimator classes.

    Raises
    ------
    RunDirError
        Missing or damaged file, an unknown format, or a class that is not allowed.
    """
    from imgclust.run import _safe_state as sio

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RunDirError(f"{path}: no saved model (a run of imgclust < 0.2, or not finished)") \
            from None
    except OSError as exc:
        raise RunDirError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        obj = sio.loads(data)
    except sio.UnsafeStateError as exc:
        raise RunDirError(f"{path}: refusing to load the saved model: {exc}") from None
    if not isinstance(obj, dict) or obj.get("format") != MODEL_FORMAT:
        raise RunDirError(f"{path}: saved model format {obj.get('format') if isinstance(obj, dict) else '?'}"
                          f"; this imgclust reads format {MODEL_FORMAT}")
    if obj.get("versions") != versions():
        old = obj.get("versions", {})
        diff = {k: (old.get(k), v) for k, v in versions().items() if old.get(k) != v}
        log.warning("%s was saved with other versions (%s): predictions may differ slightly",
                    path, ", ".join(f"{k} {a} -> {b}" for k, (a, b) in diff.items()))
    return obj
