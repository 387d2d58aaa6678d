"""Active learning: the first picks cover every cluster, then the least certain images."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imgclust.errors import ConfigError
from imgclust.label import LabelStore
from imgclust.label.active import next_to_label, suggest_run

from label_fixtures import two_blobs, write_run


def three_blobs(n_per: int = 15, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0], [10, 0], [0, 10]])
    X = np.vstack([rng.normal(c, 1, (n_per, 2)) for c in centres])
    return X, np.repeat([0, 1, 2], n_per)


def test_first_picks_cover_every_cluster_largest_first() -> None:
    X, y = three_blobs()
    clusters = y.copy()
    clusters[:3] = 1  # cluster 1 is the largest (18), then 2 (15), then 0 (12)
    picks = next_to_label(X, clusters, {}, n=3)
    assert [p.cluster for p in picks] == [1, 2, 0]
    assert all(p.reason == "representative" for p in picks)
    for p in picks:  # each the member nearest its cluster's centre
        members = np.flatnonzero(clusters == p.cluster)
        d = np.linalg.norm(X[members] - X[members].mean(axis=0), axis=1)
        assert p.index == members[np.argmin(d)]


def test_labelled_clusters_are_skipped_then_uncertain_images_follow() -> None:
    X, y = three_blobs()
    given = {0: "a", 15: "b"}  # clusters 0 and 1 have a label
    picks = next_to_label(X, y, given, n=5)
    assert picks[0].cluster == 2 and picks[0].reason == "representative"
    rest = picks[1:]
    assert len(rest) == 4 and all(p.reason == "uncertain" for p in rest)
    assert all(p.index not in given and p.index != picks[0].index for p in rest)
    assert len({p.index for p in picks}) == 5
    margins = [p.margin for p in rest]
    assert margins == sorted(margins) and all(0 <= m <= 1 for m in margins)


def test_uncertain_picks_have_the_smallest_margins_without_diversity() -> None:
    from imgclust.label.active import class_probabilities

    X, y = two_blobs(20)
    X = np.vstack([X, [[5.0] * 5]])  # one image half-way between the blobs
    given = {0: "a", 20: "b"}
    picks = next_to_label(X, np.append(y, 0), given, n=3, diversity=1)
    proba, _ = class_probabilities(X, given)
    m = np.abs(proba[:, 0] - proba[:, 1])
    free = [i for i in range(len(X)) if i not in given]
    assert [p.index for p in picks] == sorted(free, key=lambda i: (m[i], i))[:3]
    assert picks[0].index == 40  # the one in the middle is the least certain


def test_logreg_model_and_excluded_rows() -> None:
    X, y = two_blobs(20)
    picks = next_to_label(X, y, {0: "a", 20: "b"}, n=4, model="logreg", exclude=[5, 6])
    assert len(picks) == 4 and not {5, 6} & {p.index for p in picks}


def test_one_class_so_far_picks_the_farthest_images() -> None:
    X, y = two_blobs(20)
    picks = next_to_label(X, np.zeros_like(y), {0: "a"}, n=2)
    assert [p.reason for p in picks] == ["far", "far"]
    assert all(p.index >= 20 for p in picks[:1])  # the other blob first


def test_bad_arguments() -> None:
    X, y = two_blobs(5)
    with pytest.raises(ConfigError, match="n=0 must be at least 1"):
        next_to_label(X, y, {}, n=0)
    with pytest.raises(ConfigError, match="model 'svm'; valid: spread, logreg"):
        next_to_label(X, y, {}, model="svm")
    with pytest.raises(ConfigError, match="do not match"):
        next_to_label(X, y[:3], {})


def test_suggest_run(tmp_path: Path) -> None:
    X, y = two_blobs(10)
    run = write_run(tmp_path / "run", [f"img{i:02d}" for i in range(20)], y, X, "dataset:x")
    s = LabelStore(run)
    s.label(["img00"], "a")
    s.mark_not_of_interest(["img11", "img12", "img13"])
    sug = suggest_run(run, n=5)
    assert sug[0]["cluster"] == 1 and sug[0]["reason"] == "representative"
    assert not {"img00", "img11", "img12", "img13"} & {x["id"] for x in sug}
    assert len(sug) == 5
