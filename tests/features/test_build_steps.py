"""build_steps(defer=True): UMAP is made after the images are read, and a missing extra is still
refused before any image is read."""
from __future__ import annotations

import importlib.util

import pytest

from imgclust.errors import MissingExtraError
from imgclust.features import build_step, build_steps


def test_deferred_umap_is_made_later_with_the_seed():
    pytest.importorskip("umap")
    steps = build_steps("pixels:8,pca:5,umap:3", random_state=7, defer=True)
    assert [s for s, _ in steps] == ["pixels:8", "pca:5", "umap:3"]
    assert steps[0][1] is not None and steps[1][1] is not None
    assert steps[2][1] is None
    est = build_step("umap:3", 7)
    assert est.n_components == 3 and est.random_state == 7
    assert all(e is not None for _, e in build_steps("pixels:8,umap:3", 7))  # not deferred


def test_deferred_step_without_its_extra_is_refused_at_once(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "umap" else real(name, *a))
    with pytest.raises(MissingExtraError, match="umap"):
        build_steps("pixels:8,umap:3", defer=True)
