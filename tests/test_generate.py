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


def two_halves(n_per: int = 30, seed: int = 0) -> np.ndarray:
    """8x8 images bright on the left half (the first ``n_per``) or on the right half."""
    rng = np.random.default_rng(seed)
    imgs = np.zeros((2 * n_per, 8, 8), np.float64)
    imgs[:n_per, :, :4] = 255
    imgs[n_per:, :, 4:] = 255
    return np.clip(imgs + rng.normal(0, 10, imgs.shape), 0, 255).astype(np.uint8)


def test_decoded_samples_of_a_two_blob_code_mixture_land_near_the_blobs_decodings():
    pytest.importorskip("torch")
    from imgclust.features.autoencoder import AutoencoderFeatures
    from imgclust.generate import sample_decoder

    X = two_halves().reshape(60, -1).astype(np.float32) / 255
    ae = AutoencoderFeatures(n_components=2, max_epochs=150, random_state=0).fit(X)
    codes = ae.transform(X)
    R, gm = sample_decoder(ae, codes, 100, random_state=1)
    assert R.shape == (100, 64)
    centres = ae.decode(np.stack([codes[:30].mean(axis=0), codes[30:].mean(axis=0)]))
    gap = np.linalg.norm(centres[0] - centres[1])
    d = np.linalg.norm(R[:, None, :] - centres[None], axis=2)
    assert (d.min(axis=1) < 0.35 * gap).all()  # every sample near one blob's decoding
    assert 0.2 < (d.argmin(axis=1) == 0).mean() < 0.8  # and both blobs are sampled
    with pytest.raises(ValueError, match=r"codes of shape \(3, 5\)"):
        ae.decode(np.zeros((3, 5)))


def test_cli_generate_from_an_autoencoder_run(tmp_path):
    pytest.importorskip("torch")
    import imgclust

    np.savez(tmp_path / "d.npz", images=two_halves())
    imgclust.run(tmp_path / "d.npz", tmp_path / "r", method="kmeans", k=2,
                 features="pixels,autoencoder:2:max_epochs=150")
    reloaded = imgclust.load(tmp_path / "r")  # the network is saved as arrays and rebuilt
    assert reloaded.steps_[1][1].decode(np.zeros((1, 2))).shape == (1, 64)
    cmd = [sys.executable, "-m", "imgclust.cli", "generate", str(tmp_path / "r"), "-n", "9",
           "--out", str(tmp_path / "g")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "the autoencoder's 2-dimensional codes, decoded" in r.stdout
    S = np.load(tmp_path / "g" / "generated.npy")
    assert S.shape == (9, 8, 8)
    left, right = S[:, :, :4].mean(axis=(1, 2)), S[:, :, 4:].mean(axis=(1, 2))
    assert (np.abs(left - right) > 100).all()  # each one like one of the two kinds of image
    # --from pca still works on the same run; --from decoder needs an autoencoder run
    r = subprocess.run(cmd + ["--from", "pca"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "PCA dimensions" in r.stdout, r.stderr
    imgclust.run(tmp_path / "d.npz", tmp_path / "p", features="pixels", method="kmeans", k=2)
    r = subprocess.run(cmd[:4] + [str(tmp_path / "p"), "--out", str(tmp_path / "g2"),
                                  "--from", "decoder"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and "has no autoencoder step" in r.stderr, r.stderr
    assert not (tmp_path / "g2").exists()
