"""Duplicates: planted exact and near copies are found and nothing else; the radius search
backends agree with brute force; registration, keep rules, features; ``imgclust duplicates``
(real subprocesses) with its de-duplicated copy that never overwrites."""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgclust.detect.duplicates import (find_duplicates, hamming, hamming_pairs, image_hash,
                                        register)
from imgclust.errors import ConfigError


def photo(seed: int, size: int = 160) -> Image.Image:
    """A photo-like picture: 1/f^2 noise in each channel (natural images' spectrum)."""
    r = np.random.default_rng(seed)
    f = np.fft.fftfreq(size)
    fx, fy = np.meshgrid(f, f)
    amp = 1 / np.maximum(np.hypot(fx, fy), 1 / size) ** 2
    chans = []
    for _ in range(3):
        a = np.real(np.fft.ifft2(amp * np.exp(2j * np.pi * r.random((size, size)))))
        chans.append((a - a.min()) / (a.max() - a.min()) * 255)
    return Image.fromarray(np.stack(chans, -1).astype(np.uint8))


def glyph(seed: int) -> Image.Image:
    """A '1'-like glyph: white strokes of random slant, length and serifs on black (28 px, a
    margin all round, as in MNIST), enlarged to 64 px."""
    from PIL import ImageDraw

    r = np.random.default_rng(seed)
    im = Image.new("L", (28, 28), 0)
    d = ImageDraw.Draw(im)
    x0 = 14 + r.uniform(-3, 3)
    x1, y0, y1 = x0 + r.uniform(-7, 7), r.uniform(3, 8), r.uniform(19, 25)
    d.line([(x0, y0), (x1, y1)], fill=255, width=int(r.integers(2, 4)))
    d.line([(x0, y0), (x0 - r.uniform(1, 6), y0 + r.uniform(1, 6))], fill=255, width=2)
    if r.random() < 0.5:
        d.line([(x1 - r.uniform(2, 5), y1), (x1 + r.uniform(2, 5), y1)], fill=255, width=2)
    return im.resize((64, 64), Image.Resampling.BICUBIC)


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """12 distinct photos; img00 has a half-size copy, a JPEG q=60 re-encode, a 5 % crop and an
    exact byte copy; img01 an exact byte copy only."""
    root = tmp_path / "photos"
    root.mkdir()
    for s in range(12):
        photo(s).save(root / f"img{s:02d}.png")
    a = Image.open(root / "img00.png")
    w, h = a.size
    a.resize((w // 2, h // 2), Image.Resampling.LANCZOS).save(root / "a_small.png")
    a.convert("RGB").save(root / "a_q60.jpg", quality=60)
    dx = round(0.025 * w)
    a.crop((dx, dx, w - dx, h - dx)).save(root / "a_crop.png")
    shutil.copyfile(root / "img00.png", root / "copy_of_img00.png")
    shutil.copyfile(root / "img01.png", root / "img01 (1).png")
    return root


def named_groups(res) -> list[set[str]]:
    return sorted(({res.ids[r] for r in g} for g in res.groups()), key=len, reverse=True)


def test_exactly_the_planted_groups_are_found(planted):
    res = find_duplicates(planted)
    assert named_groups(res) == [
        {"img00.png", "a_small.png", "a_q60.jpg", "a_crop.png", "copy_of_img00.png"},
        {"img01.png", "img01 (1).png"}]
    kind = dict(zip(res.ids, res.kind))
    # img00 is an exact copy of the kept file; the kept file carries its group's kind
    assert kind["img00.png"] == "exact" and kind["copy_of_img00.png"] == "near"
    assert {kind[i] for i in ("a_small.png", "a_q60.jpg", "a_crop.png")} == {"near"}
    assert kind["img01.png"] == kind["img01 (1).png"] == "exact"
    # largest: the full-size ones (a tie between the two byte copies goes to the first name)
    kept = {res.ids[r] for r in np.flatnonzero(res.kept & (res.group >= 0))}
    assert kept == {"copy_of_img00.png", "img01 (1).png"}
    assert sorted(res.ids[r] for r in res.dropped()) == sorted(
        ["img00.png", "a_small.png", "a_q60.jpg", "a_crop.png", "img01.png"])
    dist = dict(zip(res.ids, res.distance))
    assert dist["img00.png"] == 0 and 0 <= dist["a_crop.png"] <= 10 and dist["img05.png"] == -1
    assert res.info["pairs"]["exact"] == 2


def test_backends_and_brute_force_agree(rng):
    codes = rng.integers(0, 256, size=(600, 8), dtype=np.uint8)
    for k in range(0, 300, 3):  # plant neighbours at 0..12 bits
        bits = np.unpackbits(codes[k])
        bits[rng.choice(64, k % 13, replace=False)] ^= 1
        codes[k + 1] = np.packbits(bits)
    D = hamming(codes[:, None, :], codes[None, :, :])  # the oracle (600 x 600, test only)
    for radius in (0, 3, 10):
        ii, jj = np.nonzero(np.triu(D <= radius, 1))
        want = set(zip(ii.tolist(), jj.tolist()))
        for backend in ("numpy", "faiss"):
            if backend == "faiss":
                pytest.importorskip("faiss")
            i, j, d = hamming_pairs(codes, radius, backend=backend)
            assert set(zip(i.tolist(), j.tolist())) == want, (backend, radius)
            assert np.all(d <= radius) and np.all(i < j)


def test_registration_makes_margin_crops_and_resizes_identical():
    big = glyph(0)
    crop = big.crop((2, 2, 62, 62))
    small = big.resize((48, 48), Image.Resampling.LANCZOS)
    c0, t0, r0 = image_hash(big)
    assert r0
    for other in (crop, small):
        c, t, r = image_hash(other)
        assert r and hamming(c0, c) <= 2
        x, y = t0.astype(float) - t0.mean(), t.astype(float) - t.mean()
        assert x @ y / np.linalg.norm(x) / np.linalg.norm(y) > 0.99
    # a photo (no plain border) is left as it is
    g, reg = register(np.asarray(photo(0).convert("L"), dtype=float))
    assert not reg and g.shape == (160, 160)


def test_the_thumbnail_check_separates_alike_glyphs(tmp_path):
    """Different digits on black share their low frequencies (pHash pairs them); the check on
    their registered thumbnails does not, while a re-encoded copy still passes it."""
    root = tmp_path / "glyphs"
    root.mkdir()
    for i in range(40):
        glyph(i).save(root / f"{i:02d}.png")
    glyph(0).convert("RGB").save(root / "copy.jpg", quality=60)
    loose = find_duplicates(root, min_similarity=None)
    assert loose.info["pairs"]["hash"] > 20 and loose.n_groups >= 3
    res = find_duplicates(root)
    assert named_groups(res) == [{"00.png", "copy.jpg"}]
    assert res.info["registered"] == 41


def test_keep_rules(planted):
    t = 1_600_000_000
    for k, name in enumerate(["a_crop.png", "img00.png", "a_q60.jpg"]):
        os.utime(planted / name, (t + k, t + k))
    res = find_duplicates(planted, keep="oldest")
    kept = {res.ids[r] for r in np.flatnonzero(res.kept & (res.group >= 0))}
    assert "a_crop.png" in kept
    res = find_duplicates(planted, keep="first")
    kept = {res.ids[r] for r in np.flatnonzero(res.kept & (res.group >= 0))}
    assert kept == {"a_crop.png", "img01 (1).png"}  # first in sorted order


def test_paths_list_dhash_and_array_sources(planted, tmp_path):
    files = [planted / "img03.png", planted / "img01.png", planted / "img01 (1).png"]
    res = find_duplicates(files, hash="dhash")
    assert named_groups(res) == [{str(files[1]), str(files[2])}]
    imgs = np.stack([np.asarray(photo(s, 32).convert("L")) for s in range(6)])
    imgs[5] = imgs[2]
    np.savez(tmp_path / "a.npz", images=imgs)
    res = find_duplicates(str(tmp_path / "a.npz"))
    assert named_groups(res) == [{"2", "5"}]
    assert set(res.kind[r] for r in res.groups()[0]) == {"exact"}


def test_feature_cosine_pairs(planted):
    res0 = find_duplicates(planted, radius=0, min_similarity=1.0)
    ids = list(res0.ids)
    X = np.eye(len(ids))
    X[ids.index("img07.png")] = X[ids.index("img08.png")] * 3  # same direction
    res = find_duplicates(planted, radius=0, min_similarity=1.0, features=X,
                          feature_ids=ids, cosine=0.99)
    assert {"img07.png", "img08.png"} in named_groups(res)
    assert res.info["pairs"]["cosine"] == 1


@pytest.mark.parametrize("kwargs, match", [
    (dict(radius=64), "radius=64 must be an integer in 0..63"),
    (dict(hash="ahash"), "hash='ahash'; valid: phash, dhash"),
    (dict(keep="newest"), "keep='newest'; valid: largest, oldest, first"),
    (dict(min_similarity=2), "min_similarity=2"),
    (dict(cosine=0.9), "cosine needs features"),
])
def test_bad_options(planted, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        find_duplicates(planted, **kwargs)


# --- the command ------------------------------------------------------------------------------

def imgclust(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "imgclust.cli", *args], capture_output=True,
                          text=True, timeout=300)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_cli_writes_groups_page_and_a_deduplicated_copy(planted, tmp_path):
    (planted / "notes.txt").write_text("not an image")  # listed as unreadable, still copied
    before = snapshot(planted)
    out = tmp_path / "out"
    res = imgclust("duplicates", str(planted), "--out", str(out), "--export", "copy", "-q")
    assert res.returncode == 0, res.stderr
    assert "17 images read, 1 could not be read: 2 groups (1 exact, 1 near), 5 duplicates" \
        in res.stdout
    with open(out / "duplicates.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["group", "id", "path", "kept", "kind", "distance"]
    assert len(rows) == 7 and {r["group"] for r in rows} == {"0", "1"}
    assert sum(r["kept"] == "1" for r in rows) == 2
    assert all(Path(r["path"]).is_absolute() and Path(r["path"]).exists() for r in rows)
    page = (out / "duplicates.html").read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == 7 and "group 0: 5 images" in page
    unique = snapshot(out / "unique")
    assert sorted(unique) == sorted(set(before) - {"img00.png", "a_small.png", "a_q60.jpg",
                                                   "a_crop.png", "img01.png"})
    assert all(unique[k] == before[k] for k in unique)
    assert snapshot(planted) == before  # the source is never touched
    # an export never overwrites: a second one into the same unique/ is refused, files intact
    again = imgclust("duplicates", str(planted), "--out", str(out), "--export", "copy", "-q")
    assert again.returncode == 1 and "holds files of an earlier export" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1 and snapshot(out / "unique") == unique
    # without --export the same folder is reused
    assert imgclust("duplicates", str(planted), "--out", str(out), "-q").returncode == 0


def test_cli_refusals(planted, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "a.txt").write_text("x")
    res = imgclust("duplicates", str(planted), "--out", str(mine), "-q")
    assert res.returncode == 1 and res.stderr.startswith(f"error: {mine}: folder is not empty")
    assert "Traceback" not in res.stderr and sorted(os.listdir(mine)) == ["a.txt"]
    res = imgclust("duplicates", "dataset:digits", "--out", str(tmp_path / "o"),
                   "--export", "copy", "-q")
    assert res.returncode == 2 and "--export copy needs a folder of files" in res.stderr
    res = imgclust("duplicates", str(planted), "--out", str(tmp_path / "o"), "--keep", "newest")
    assert res.returncode == 2 and "keep='newest'; valid: largest, oldest, first" in res.stderr
    assert not (tmp_path / "o").exists()


def test_cli_feature_cosine(planted, tmp_path):
    """--cosine alone (hash pairs switched off by radius 0 and a check nothing passes but
    identical thumbnails) still groups the copies through their pixel features."""
    out = tmp_path / "out"
    res = imgclust("duplicates", str(planted), "--out", str(out), "--radius", "0",
                   "--min-similarity", "1", "--cosine", "0.999", "-f", "pixels:8", "-q")
    assert res.returncode == 0, res.stderr
    with open(out / "duplicates.csv", newline="") as f:
        groups = {}
        for r in csv.DictReader(f):
            groups.setdefault(r["group"], set()).add(r["id"])
    assert {"a_crop.png", "a_small.png", "a_q60.jpg"} <= groups["0"]
    bad = imgclust("duplicates", str(planted), "--out", str(out), "-f", "pixels:8")
    assert bad.returncode == 2 and "--features is used by --cosine only" in bad.stderr
