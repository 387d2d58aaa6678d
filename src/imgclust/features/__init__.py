"""Feature extraction: images to a matrix, then optional reduction steps.

``build_steps("cnn,pca:50,umap:10")`` gives the estimators; a spec that starts with an array
step gets ``pixels`` put in front of it.
"""
from __future__ import annotations

from typing import Any

from imgclust.errors import ConfigError
from imgclust.features import registry


def split_steps(spec: str) -> list[str]:
    """``"cnn,pca:50"`` -> ``["cnn", "pca:50"]``."""
    steps = [s.strip() for s in spec.split(",") if s.strip()]
    if not steps:
        raise ConfigError(f"no feature steps in {spec!r}")
    return steps


def build_steps(spec: str, random_state: int | None = None, defer: bool = False
                ) -> list[tuple[str, Any]]:
    """Parse a feature spec into ``(spec, estimator)`` pairs, images step first.

    Parameters
    ----------
    spec : str
        Comma-separated steps, each ``name[:positional][:key=value…]``.
    random_state : int or None
        Passed to every step that has a ``random_state`` parameter and none given.
    defer : bool
        Leave the estimator of a step registered with ``module=`` (UMAP: importing umap-learn
        and numba takes ~120 MB) as ``None``, after checking that its module is installed;
        :func:`build_step` makes it when it is needed, so the images are read without it.
    """
    registry.load_builtins()
    steps = split_steps(spec)
    first_input = registry.entry(registry.parse_name(steps[0])).meta.get("input")
    if first_input != "images":
        steps.insert(0, "pixels")
    out = []
    for i, s in enumerate(steps):
        name = registry.parse_name(s)
        kind = registry.entry(name).meta.get("input")
        if i > 0 and kind == "images":
            raise ConfigError(f"{name!r} reads images, so it can only be the first step of {spec!r}")
        module = registry.entry(name).meta.get("module")
        if defer and i > 0 and module:
            import importlib.util

            if importlib.util.find_spec(module) is None:
                from imgclust.errors import MissingExtraError

                raise MissingExtraError(f"the {name!r} feature step",
                                        registry.entry(name).meta.get("extra", module))
            out.append((s, None))
            continue
        out.append((s, build_step(s, random_state)))
    return out


def build_step(s: str, random_state: int | None = None) -> Any:
    """One step's estimator (``random_state`` as in :func:`build_steps`)."""
    est = registry.create(s)
    if random_state is not None and "random_state" in _params(est) and _params(est)["random_state"] is None:
        est = registry.create(s, random_state=random_state)  # the factory sees the seed
    return est


def _params(est: Any) -> dict[str, Any]:
    return est.get_params(deep=False) if hasattr(est, "get_params") else {}
