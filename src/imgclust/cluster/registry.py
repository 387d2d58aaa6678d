"""The clusterer registry. Built-ins are scikit-learn's own estimators, registered by name.

Each entry's metadata says how the pipeline drives it:

- ``k_param``: the parameter that sets the number of clusters (``None`` if the method finds it);
- ``criteria``: the ways ``--k auto`` may choose it (first is the default);
- ``sweep``: ``"k"`` (try a range of k) or ``"eps"`` (DBSCAN's eps sweep) or ``None``.
"""
from __future__ import annotations

from typing import Any

from imgclust.registry import Registry

CLUSTERERS: Registry[Any] = Registry("clustering method")
register = CLUSTERERS.register
names = CLUSTERERS.names
entry = CLUSTERERS.entry
create = CLUSTERERS.create


def load_builtins() -> None:
    """Import the built-in families so that they register themselves."""
    from imgclust.cluster import density, hierarchy, kmeans, mixture, spectral  # noqa: F401
