"""Runs for the app's tests, made once per module and copied per test (each test its own store).

Imported by the test modules (not a conftest.py: ``from conftest import …`` elsewhere in the
suite must keep finding tests/conftest.py).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import imgclust

pytest.importorskip("fastapi", reason='pip install "imgclust[app]"')
pytest.importorskip("httpx", reason="pip install httpx")

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def make_colour_folder(root: Path, n_per: int = 8, size: int = 24, seed: int = 0) -> None:
    """Three colour groups of PNGs, and ``zz_link.png``: a symlink to an image outside ``root``."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    for name, rgb in COLOURS.items():
        for i in range(n_per):
            a = np.clip(np.array(rgb) + rng.normal(0, 10, (size, size, 3)), 0, 255)
            Image.fromarray(a.astype(np.uint8)).save(root / f"{name}_{i}.png")
    secret = root.parent / "outside" / "secret.png"
    secret.parent.mkdir()
    Image.new("RGB", (size, size), COLOURS["red"]).save(secret)
    (root / "zz_link.png").symlink_to(secret)


#: the runs made in this process (a run takes seconds: the test modules share them)
_RUNS: dict[str, Path] = {}


@pytest.fixture(scope="module")
def digits_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if "digits" not in _RUNS:
        out = tmp_path_factory.mktemp("digits") / "run"
        imgclust.run("dataset:digits", out=out, features="pixels", method="kmeans", k=10)
        _RUNS["digits"] = out
    return _RUNS["digits"]


@pytest.fixture(scope="module")
def folder_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if "folder" not in _RUNS:
        base = tmp_path_factory.mktemp("folder")
        make_colour_folder(base / "photos")
        out = base / "run"
        imgclust.run(base / "photos", out=out, features="pixels:8", method="kmeans", k=3)
        _RUNS["folder"] = out
    return _RUNS["folder"]


def copy_run(base: Path, dest: Path) -> Path:
    """A fresh copy of a run directory (no labels yet)."""
    shutil.copytree(base, dest, ignore=shutil.ignore_patterns("labels.sqlite*"))
    return dest


@pytest.fixture
def digits_run(digits_base: Path, tmp_path: Path) -> Path:
    return copy_run(digits_base, tmp_path / "run")


@pytest.fixture
def folder_run(folder_base: Path, tmp_path: Path) -> Path:
    return copy_run(folder_base, tmp_path / "run")


def client_of(run_dir: Path, **kw: Any) -> Any:
    """(TestClient on 127.0.0.1, the app) for ``run_dir``."""
    from fastapi.testclient import TestClient

    from imgclust.app import create_app

    app = create_app(run_dir, **kw)
    return TestClient(app, base_url="http://127.0.0.1"), app
