"""Runs to report on, made in the test from small synthetic images.

Imported by the test modules (not a conftest.py: ``from conftest import …`` elsewhere in the
suite must keep finding tests/conftest.py).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import imgclust


def make_photo_folder(root: Path, n_per: int = 12, size: int = 72, seed: int = 0) -> dict[str, str]:
    """Three colour classes of ``size``-px images in class subfolders, one image put in the
    wrong folder (a blue image in red/), and one file that is not an image. Returns id -> class."""
    rng = np.random.default_rng(seed)
    colours = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}
    truth = {}
    for name, rgb in colours.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n_per):
            a = np.clip(np.array(rgb) + rng.normal(0, 12, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(a).save(root / name / f"{name}_{i}.png")
            truth[f"{name}/{name}_{i}.png"] = name
    blue = np.clip(np.array(colours["blue"]) + rng.normal(0, 12, (size, size, 3)), 0, 255)
    Image.fromarray(blue.astype(np.uint8)).save(root / "red" / "odd_one.png")
    truth["red/odd_one.png"] = "red"
    (root / "green" / "notes.png").write_text("not an image")
    return truth


@pytest.fixture
def make_photos():
    return make_photo_folder


@pytest.fixture
def photo_run(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A finished run over :func:`make_photo_folder` (files-mode thumbnails), no report yet."""
    root = tmp_path / "photos"
    truth = make_photo_folder(root)
    out = tmp_path / "run"
    imgclust.run(root, out, features="pixels:8", method="kmeans", k="auto", k_range=(2, 5),
                 labels="folders")
    return out, truth


@pytest.fixture
def tiny_run(tmp_path: Path) -> Path:
    """A finished run over an .npz of 8x8 images in four shapes (sheet-mode thumbnails)."""
    rng = np.random.default_rng(1)
    shapes = np.zeros((4, 8, 8), np.uint8)
    shapes[0, 2:6, 2:6] = 255            # square
    shapes[1, :, 3:5] = 255              # vertical bar
    shapes[2, 3:5, :] = 255              # horizontal bar
    shapes[3][np.eye(8, dtype=bool)] = 255  # diagonal
    y = rng.integers(0, 4, 400)
    imgs = np.clip(shapes[y] + rng.normal(0, 20, (400, 8, 8)), 0, 255).astype(np.uint8)
    npz = tmp_path / "tiny.npz"
    np.savez(npz, images=imgs, labels=y)
    out = tmp_path / "tiny-run"
    imgclust.run(npz, out, features="pixels", method="kmeans", k=4)
    return out
