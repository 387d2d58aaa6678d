"""The clusterer registry. Built-ins are scikit-learn's own estimators, registered by name.

Each entry's metadata says how the pipeline drives it:

- ``k_param``: the parameter that sets the number of clusters (``None`` if the method finds it);
- ``criteria``: the ways ``--k auto`` may choose it (first is the default);
- ``sweep``: ``"k"`` (try a range of k) or ``"eps"`` (DBSCAN's eps sweep) or ``None``.
"""
from __future__ import annotations

from typing import Any

from imgclust.registry import Entry, Registry

#: every way of choosing k, in plain words (``imgclust methods NAME`` prints them)
CRITERIA = {
    "silhouette": "how much closer each image is to its own cluster than to the next one "
                  "(-1..1; the highest wins)",
    "elbow": "the k after which adding clusters stops shrinking the within-cluster spread "
             "(inertia) much: the bend of that curve",
    "bic": "Bayesian information criterion: how well the mixture fits, penalised by its number "
           "of parameters (the lowest wins)",
    "aic": "Akaike information criterion: as BIC with a lighter penalty, so it allows more "
           "clusters",
    "density": "k is the number of dense groups HDBSCAN finds; the method then starts from their "
               "means",
    "graph": "the smaller of the eigengap's k and the highest modularity's k",
    "modularity": "the k whose clusters keep the most nearest-neighbour links inside them "
                  "beyond what chance would (the highest wins)",
    "eigengap": "the k after which the sorted eigenvalues of the neighbour graph's Laplacian "
                "jump the most (one small eigenvalue per loosely joined group)",
    "eps": "DBSCAN's neighbourhood radius is swept and chosen by silhouette, with at most half "
           "the images as noise",
    "upper-bound": "k is only the most clusters allowed; the method keeps fewer if the data "
                   "support fewer",
}


def _describe_extra(entry: Entry[Any]) -> dict[str, Any]:
    crit = entry.meta.get("criteria", ())
    return {"k_param": entry.meta.get("k_param"),
            "criteria": [{"name": c, "meaning": CRITERIA.get(c, "")} for c in crit]}


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
