"""Shared fixtures: small synthetic images made in the test, never written to the work tree."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(scope="session", autouse=True)
def one_native_thread():
    """Run scikit-learn's OpenMP/BLAS code on one thread in tests: on a small, shared machine
    the spinning worker threads made tiny fits (k-means on 90 points) 40x slower. Results do
    not depend on the thread count; subprocess tests run with the library defaults."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def make_color_folder(root: Path, n_per: int = 6, size: int = 24, seed: int = 0) -> dict[str, str]:
    """Three colour groups (red, green, blue) with noise, in class subfolders. Returns id -> class."""
    rng = np.random.default_rng(seed)
    colors = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}
    truth = {}
    for name, rgb in colors.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n_per):
            a = np.clip(np.array(rgb) + rng.normal(0, 12, (size, size, 3)), 0, 255).astype(np.uint8)
            p = root / name / f"{name}_{i}.png"
            Image.fromarray(a).save(p)
            truth[f"{name}/{name}_{i}.png"] = name
    return truth


@pytest.fixture
def make_colors():
    """:func:`make_color_folder` itself, for tests that need other sizes (``from conftest import``
    is ambiguous once a subfolder has its own conftest.py)."""
    return make_color_folder


@pytest.fixture
def color_folder(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "colors"
    return root, make_color_folder(root)


@pytest.fixture
def mnist10k() -> Path:
    p = SHARED / "mnist10k.npz"
    if not p.exists():
        pytest.skip("../shared/datasets/mnist10k.npz is not on this machine")
    return p
