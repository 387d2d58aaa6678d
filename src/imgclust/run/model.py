"""The saved model: fitted feature steps, the clusterer, and what assigning new images needs.

Written into the run directory with skops (``model.skops``), whose loader builds objects from a
description of their types and state and never runs code from the file (unlike pickle or
joblib). Types are checked before loading: scikit-learn's and numpy's are trusted by skops
itself; imgclust's own classes (``imgclust.*``) are trusted here, since constructing them runs
only this package's code; anything else makes loading refuse, naming the types.

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

#: raised when what model.skops holds changes shape; an older format is refused
MODEL_FORMAT = 1
#: steps whose output for a new image differs from what they gave the run's images
NON_INDUCTIVE = ("umap", "tsne")
#: module prefixes whose types may be loaded besides those skops trusts by default
TRUSTED_PREFIXES = ("imgclust.",)


def versions() -> dict[str, str]:
    """Versions of Python, imgclust and the libraries that shape results."""
    out = {"python": platform.python_version(), "imgclust": __version__}
    for pkg in ("numpy", "scipy", "scikit-learn", "pillow", "umap-learn", "onnxruntime", "skops"):
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


def model_bytes(steps: list[tuple[str, Any]], clusterer: Any) -> bytes:
    """Serialise the assign prefix of ``steps`` and the clusterer with skops."""
    import skops.io as sio

    n = assign_prefix([s for s, _ in steps])
    payload: dict[str, Any] = {"format": MODEL_FORMAT, "imgclust_version": __version__,
                               "versions": versions(),
                               "steps": [[s, est] for s, est in steps[:n]],
                               "step_specs": [s for s, _ in steps], "clusterer": None}
    try:
        payload["clusterer"] = clusterer
        return sio.dumps(payload)
    except Exception as exc:  # noqa: BLE001 - skops cannot describe every third-party type
        log.warning("the fitted clusterer (%s) cannot be saved (%s); new images are still "
                    "assigned by their nearest run images", type(clusterer).__name__, exc)
        payload["clusterer"] = None
        return sio.dumps(payload)


def load_model(path: str | Path) -> dict[str, Any]:
    """Load ``model.skops`` after checking every type it would build.

    Raises
    ------
    RunDirError
        Missing or damaged file, an unknown format, or types that are not trusted.
    """
    import skops.io as sio

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RunDirError(f"{path}: no saved model (a run of imgclust < 0.2, or not finished)") \
            from None
    except OSError as exc:
        raise RunDirError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # noqa: BLE001 - skops raises several kinds on a damaged file
        raise RunDirError(f"{path}: damaged saved model ({type(exc).__name__}: {exc})") from None
    refused = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if refused:
        raise RunDirError(f"{path}: refusing to load types that are not imgclust's, "
                          f"scikit-learn's or numpy's: {', '.join(refused[:10])}")
    try:
        obj = sio.loads(data, trusted=untrusted)
    except Exception as exc:  # noqa: BLE001
        raise RunDirError(f"{path}: cannot load the saved model ({type(exc).__name__}: {exc})") \
            from None
    if not isinstance(obj, dict) or obj.get("format") != MODEL_FORMAT:
        raise RunDirError(f"{path}: saved model format {obj.get('format') if isinstance(obj, dict) else '?'}"
                          f"; this imgclust reads format {MODEL_FORMAT}")
    if obj.get("versions") != versions():
        old = obj.get("versions", {})
        diff = {k: (old.get(k), v) for k, v in versions().items() if old.get(k) != v}
        log.warning("%s was saved with other versions (%s): predictions may differ slightly",
                    path, ", ".join(f"{k} {a} -> {b}" for k, (a, b) in diff.items()))
    return obj
