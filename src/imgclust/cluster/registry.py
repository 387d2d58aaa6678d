"""The clusterer registry. Built-ins are scikit-learn's own estimators, registered by name.

Each entry's metadata says how the pipeline drives it:

- ``k_param``: the parameter that sets the number of clusters (``None`` if the method finds it);
- ``criteria``: the ways ``--k auto`` may choose it (first is the default; any criterion of
  :mod:`imgclust.cluster.criteria` that applies to the method is valid too);
- ``sweep``: ``"k"`` (try a range of k) or ``"eps"`` (DBSCAN's eps sweep) or ``None``.
"""
from __future__ import annotations

from typing import Any

from imgclust.registry import Entry, Registry

def _describe_extra(entry: Entry[Any]) -> dict[str, Any]:
    from imgclust.cluster import criteria

    crit = criteria.for_method(entry.meta)
    return {"k_param": entry.meta.get("k_param"),
            "criteria": [{"name": c, "meaning": criteria.meaning(c)} for c in crit]}


CLUSTERERS: Registry[Any] = Registry("clustering method", describe_extra=_describe_extra)
register = CLUSTERERS.register
names = CLUSTERERS.names
entry = CLUSTERERS.entry
create = CLUSTERERS.create
check = CLUSTERERS.check
describe = CLUSTERERS.describe


def load_builtins() -> None:
    """Import the built-in families so that they register themselves."""
    from imgclust.cluster import density, hierarchy, kmeans, mixture, spectral  # noqa: F401
