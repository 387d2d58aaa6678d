"""Label propagation: each mode on two blobs with one label each, and on a run directory."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imgclust.errors import ConfigError
from imgclust.label import LabelStore
from imgclust.label.propagate import parse_mode, propagate, propagate_run

from label_fixtures import two_blobs, write_run


@pytest.fixture
def blobs() -> tuple[np.ndarray, np.ndarray]:
    return two_blobs(20)


@pytest.mark.parametrize("mode", ["cluster", "spread"])
def test_one_label_per_blob_reaches_every_image(blobs, mode: str) -> None:
    X, y = blobs
    p = propagate(X, y, {3: "a", 25: "b"}, mode)
    assert p.labels.tolist() == ["a"] * 20 + ["b"] * 20
    assert np.all((p.confidence > 0) & (p.confidence <= 1))
    assert p.confidence[3] == p.confidence[25] == 1.0


def test_spread_does_not_need_the_clusters(blobs) -> None:
    X, y = blobs
    p = propagate(X, np.zeros_like(y), {3: "a", 25: "b"}, "spread")  # one cluster for all
    assert p.labels.tolist() == ["a"] * 20 + ["b"] * 20
    assert np.all(p.confidence > 0.5)


def test_nearest_labels_only_the_share_nearest_the_centre(blobs) -> None:
    X, y = blobs
    p = propagate(X, y, {3: "a", 25: "b"}, "nearest:20%")
    for c, lab in ((0, "a"), (1, "b")):
        members = np.flatnonzero(y == c)
        d = np.linalg.norm(X[members] - X[members].mean(axis=0), axis=1)
        nearest = set(members[np.argsort(d)[:4]].tolist())  # 20 % of 20
        got = {int(i) for i in members if p.labels[i] is not None}
        assert got == nearest | ({3} if c == 0 else {25})  # plus the labelled image itself
        assert all(p.labels[i] == lab for i in got)
        assert all(np.isnan(p.confidence[i]) for i in set(members) - got)


def test_cluster_confidence_is_the_agreeing_share_times_centrality(blobs) -> None:
    X, y = blobs
    members = np.flatnonzero(y == 0)
    d = np.linalg.norm(X[members] - X[members].mean(axis=0), axis=1)
    centre, rim = members[np.argsort(d)[[0, -1]]]
    given = {1: "a", 2: "a", 5: "x", 25: "b"}  # blob 0: 2 of 3 say "a"
    given = {k: v for k, v in given.items() if k not in (centre, rim)}
    p = propagate(X, y, given, "cluster")
    assert p.labels[centre] == p.labels[rim] == "a"
    assert p.confidence[centre] == pytest.approx(2 / 3)
    assert p.confidence[rim] == pytest.approx(2 / 3 * 0.5)
    assert p.labels[5] == "x"  # a person's label is never overridden


def test_noise_gets_no_cluster_label(blobs) -> None:
    X, y = blobs
    clusters = y.copy()
    clusters[[0, 1]] = -1
    p = propagate(X, clusters, {3: "a", 25: "b"}, "cluster")
    assert p.labels[0] is None and p.labels[1] is None
    assert propagate(X, clusters, {3: "a", 25: "b"}, "spread").labels[0] == "a"


def test_a_cluster_without_labels_stays_unlabelled(blobs) -> None:
    X, y = blobs
    p = propagate(X, y, {3: "a"}, "cluster")
    assert all(v is None for v in p.labels[20:])


@pytest.mark.parametrize("mode,match", [("near", "valid: cluster, nearest:P%"),
                                        ("nearest:0%", r"must be in \(0, 100\]"),
                                        ("nearest:150%", r"must be in \(0, 100\]")])
def test_bad_modes(mode: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_mode(mode)


def test_parse_mode() -> None:
    assert parse_mode("nearest:20%") == ("nearest", 0.2)
    assert parse_mode("nearest:5") == ("nearest", 0.05)
    assert parse_mode("spread") == ("spread", None)


def test_no_labels_is_a_clear_error(blobs) -> None:
    X, y = blobs
    with pytest.raises(ConfigError, match="at least one labelled image"):
        propagate(X, y, {}, "cluster")


@pytest.fixture
def run(tmp_path: Path) -> Path:
    X, y = two_blobs(10)
    return write_run(tmp_path / "run", [f"img{i:02d}" for i in range(20)], y, X, "dataset:x")


def test_propagate_run_records_one_undoable_batch(run: Path) -> None:
    s = LabelStore(run)
    s.label(["img00"], "a")
    s.label(["img10"], "b")
    s.mark_not_of_interest(["img05"])
    s.label(["img01"], "z", source="model", confidence=0.3)
    res = propagate_run(run, "cluster")
    assert res["labelled"] == 17 and res["changed"] == 17 and res["cleared"] == 0
    assert res["by_label"] == {"a": 8, "b": 9}
    cur = s.current_labels()
    assert cur["img00"] == ("a", "human", None)
    assert "img05" not in cur  # not of interest: left alone
    assert cur["img01"][:2] == ("a", "propagated")  # replaces the model's label
    assert all(cur[f"img{i:02d}"][0] == "b" for i in range(10, 20))
    assert propagate_run(run, "cluster")["batch"] is None  # the same again: nothing written
    # a narrower mode takes back the labels it no longer gives
    res = propagate_run(run, "nearest:20%")
    assert res["cleared"] == 17 - res["labelled"] and res["labelled"] < 17
    assert len(s.current_labels(["propagated"])) == res["labelled"]
    s.undo(res["batch"])
    assert len(s.current_labels(["propagated"])) == 17


def test_propagate_run_follows_cluster_edits(run: Path) -> None:
    s = LabelStore(run)
    s.label(["img00"], "a")
    s.label(["img10"], "b")
    s.move(["img11", "img12"], 0)  # a person says these belong with cluster 0
    propagate_run(run, "cluster")
    assert s.current_labels()["img11"][0] == "a"


def test_propagate_run_without_labels(run: Path) -> None:
    with pytest.raises(ConfigError, match="no labels yet"):
        propagate_run(run, "spread")
