"""imgclust generate: samples of a fitted mixture land where the images are (issue 14)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from imgclust.errors import RunDirError
from imgclust.generate import fit_sampler, sample


def test_samples_of_a_two_blob_mixture_land_in_the_blobs():
    rng = np.random.default_rng(0)
    a = rng.normal(50, 3, (100, 16))
    b = rng.normal(200, 3, (100, 16))
    pca, gm = fit_sampler(np.r_[a, b])
    assert gm.n_components == 2
    S = sample(pca, gm, 200, random_state=1)
    near_a = np.linalg.norm(S - 50, axis=1) < np.linalg.norm(S - 200, axis=1)
    # every sample is near one blob's centre (within 4 sd of the blob's spread per pixel)
    d = np.where(near_a, np.linalg.norm(S - 50, axis=1), np.linalg.norm(S - 200, axis=1))
    assert (d < 4 * 3 * np.sqrt(16)).all()
    assert 0.3 < near_a.mean() < 0.7  # both blobs are sampled


def test_cli_generate_writes_a_grid_and_refuses_a_foreign_folder(tmp_path):
    import imgclust

    rng = np.random.default_rng(0)
    imgs = np.zeros((60, 8, 8), np.uint8)
    imgs[:30, :, :4] = 255
    imgs[30:, :, 4:] = 255
    np.savez(tmp_path / "d.npz", images=np.clip(imgs + rng.normal(0, 10, imgs.shape), 0, 255).astype(np.uint8))
    imgclust.run(tmp_path / "d.npz", tmp_path / "r", features="pixels", method="kmeans", k=2)
    cmd = [sys.executable, "-m", "imgclust.cli", "generate", str(tmp_path / "r"), "-n", "9",
           "--out", str(tmp_path / "g")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    S = np.load(tmp_path / "g" / "generated.npy")
    assert S.shape == (9, 8, 8)
    # each generated image is bright on one half: like one of the two kinds of image
    left, right = S[:, :, :4].mean(axis=(1, 2)), S[:, :, 4:].mean(axis=(1, 2))
    assert (np.abs(left - right) > 100).all()
    assert (tmp_path / "g" / "generated.png").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "x.txt").write_text("keep")
    r = subprocess.run(cmd[:-1] + [str(tmp_path / "mine")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 1 and "not empty" in r.stderr
    assert (tmp_path / "mine" / "x.txt").read_text() == "keep"


def test_generate_needs_a_run(tmp_path):
    from imgclust.generate import generate

    with pytest.raises(RunDirError):
        generate(tmp_path / "none", tmp_path / "g")
