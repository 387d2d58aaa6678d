"""The k criteria as objects: one registry, and a new criterion needs no other file."""
from __future__ import annotations

import numpy as np
import pytest

from imgclust.cluster import criteria, fit_clusters
from imgclust.errors import ConfigError


def _blobs(n_per: int = 40, centres: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(scale=10, size=(centres, 5))
    return np.concatenate([ci + rng.normal(size=(n_per, 5)) for ci in c])


def test_every_selectable_criterion_has_meaning_and_kind():
    for name in criteria.selectable():
        c = criteria.get(name)
        assert c.meaning and c.kind in ("sweep", "graph", "density")
    assert {"silhouette", "elbow", "bic", "aic", "density", "graph", "modularity",
            "eigengap"} <= set(criteria.selectable())
    assert "given" not in criteria.selectable()


def test_sweep_picks():
    table = [{"k": 2, "silhouette": 0.5, "inertia": 100.0, "bic": 9.0},
             {"k": 3, "silhouette": 0.7, "inertia": 20.0, "bic": 5.0},
             {"k": 4, "silhouette": 0.7, "inertia": 18.0, "bic": 7.0},
             {"k": 5, "silhouette": 0.1, "inertia": 17.0, "bic": 8.0}]
    assert criteria.get("silhouette").pick(table) == 3  # a tie goes to the smaller k
    assert criteria.get("elbow").pick(table) == 3
    assert criteria.get("bic").pick(table) == 3
    assert criteria.get("aic").pick(table) is None  # no aic column: cannot pick


def test_disagreement_lists_each_compared_pick():
    table = [{"k": 2, "silhouette": 0.9, "inertia": 100.0},
             {"k": 3, "silhouette": 0.5, "inertia": 90.0},
             {"k": 4, "silhouette": 0.4, "inertia": 10.0},
             {"k": 5, "silhouette": 0.3, "inertia": 9.0}]
    dis = criteria.disagreement(2, "silhouette", table)
    assert dis["picks"] == {"silhouette": 2, "elbow": 4} and dis["others"] == [4]
    agree = [{"k": k, "silhouette": s, "inertia": i} for k, s, i in
             [(2, 0.5, 100.0), (3, 0.9, 10.0), (4, 0.4, 9.0), (5, 0.3, 8.5)]]
    assert criteria.disagreement(3, "silhouette", agree) is None


def test_new_criterion_registered_in_one_place_is_usable_end_to_end():
    @criteria.register
    class Largest(criteria.Criterion):  # picks the largest k tried: easy to recognise
        name = "test-largest"
        kind = "sweep"
        meaning = "the largest k tried"

        def applies(self, meta):
            return meta.get("sweep") == "k"

        def columns(self, X, labels, est, random_state=0):
            return {"test_size": int(len(set(labels.tolist())))}

        def pick(self, table):
            return max(int(r["k"]) for r in table)

        def sentence(self, o):
            return f"k = {o.chosen}, the largest tried."

    try:
        X = _blobs()
        labels, sel, _ = fit_clusters(X, "kmeans", "auto", criterion="test-largest", k_range=(2, 6))
        assert sel.criterion == "test-largest" and sel.chosen == 6
        assert len(set(labels.tolist())) == 6
        assert all("test_size" in r for r in sel.table)  # its column is in every row
        summary = {"k": {"criterion": "test-largest", "selected_value": 6, "sweep": sel.table,
                         "requested": "auto"}, "n_clusters": 6, "method": {"name": "kmeans"}}
        assert criteria.sentence(summary) == "k = 6, the largest tried."
        assert criteria.short(summary) == "k chosen by test-largest"
        assert "test-largest" in criteria.for_method({"sweep": "k", "criteria": ("silhouette",)})
        # it applies to sweeping methods only: HDBSCAN finds k itself
        assert "test-largest" not in criteria.for_method({"sweep": None, "criteria": ()})
    finally:
        criteria._CRITERIA.pop("test-largest", None)


def test_bic_on_kmeans_is_a_usage_error():
    with pytest.raises(ConfigError, match="bic"):
        fit_clusters(_blobs(), "kmeans", "auto", criterion="bic", k_range=(2, 4))


def test_report_and_terminal_sentences():
    summary = {"k": {"criterion": "silhouette", "selected_value": 4, "requested": "auto",
                     "sweep": [{"k": 2, "silhouette": 0.2}, {"k": 4, "silhouette": 0.6,
                                                             "chosen": True}]},
               "n_clusters": 4, "method": {"name": "kmeans"}}
    assert criteria.sentence(summary) == ("k = 4 was chosen among k = 2…4 by the highest "
                                          "silhouette (silhouette 0.600).")
    assert criteria.short(summary) == "k chosen by silhouette"
    given = {"k": {"criterion": "given", "selected_value": 5, "requested": "5", "sweep": []},
             "n_clusters": 5, "method": {"name": "kmeans"}}
    assert criteria.sentence(given) == "k = 5, as given." and criteria.short(given) == "k given"
    hdb = {"k": {"criterion": "none", "selected_value": None, "requested": "5", "sweep": []},
           "n_clusters": 3, "method": {"name": "hdbscan:min_cluster_size=5"}}
    assert criteria.short(hdb) == "found by hdbscan; -k 5 does not apply"
