"""``imgclust segment``: colour segmentation by k-means over the pixels."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from imgclust.errors import ConfigError, RunDirError
from imgclust.outdir import claim_out_dir
from imgclust.segment import segment_file, segment_image

RED, BLUE = (200, 30, 40), (20, 40, 210)


def two_colour(rng: np.random.Generator, h: int = 40, w: int = 60) -> np.ndarray:
    """Left half red, right half blue, with a little noise."""
    a = np.empty((h, w, 3), np.float64)
    a[:, : w // 2] = RED
    a[:, w // 2:] = BLUE
    return np.clip(a + rng.normal(0, 4, a.shape), 0, 255).round().astype(np.uint8)


def segment_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "imgclust.cli", "segment", *args],
                          capture_output=True, text=True, timeout=120)


def test_two_colours_come_back_exactly(rng):
    a = two_colour(rng)
    labels, palette, seg = segment_image(Image.fromarray(a), 2)
    assert labels.shape == (40, 60) and palette.shape == (2, 3) and palette.dtype == np.uint8
    left, right = np.unique(labels[:, :30]), np.unique(labels[:, 30:])
    assert len(left) == 1 and len(right) == 1 and left[0] != right[0]  # every pixel right
    assert np.abs(palette[left[0]].astype(int) - RED).max() <= 5
    assert np.abs(palette[right[0]].astype(int) - BLUE).max() <= 5
    assert seg.mode == "RGB" and seg.size == (60, 40)
    assert (np.asarray(seg) == palette[labels]).all()


def test_palette_is_ordered_by_share_and_reproducible(rng):
    a = two_colour(rng)
    a[:, 20:30] = two_colour(rng)[:, 40:50]  # blue now covers 40 of 60 columns
    labels, palette, _ = segment_image(a, 2, random_state=3)
    assert np.abs(palette[0].astype(int) - BLUE).max() <= 5  # the larger share comes first
    assert (labels == 0).sum() == 40 * 40
    labels2, palette2, _ = segment_image(a, 2, random_state=3)
    assert (labels == labels2).all() and (palette == palette2).all()


@pytest.mark.parametrize("k,match", [(0, "positive integer"), (2.5, "positive integer"),
                                     (3, "more than the 2 distinct colours")])
def test_bad_number_of_colours(k, match):
    a = np.zeros((4, 4, 3), np.uint8)
    a[:, 2:] = 255
    with pytest.raises(ConfigError, match=match):
        segment_image(a, k)


def test_segment_file_writes_everything_and_downscales_huge_images(rng, tmp_path):
    big = np.repeat(np.repeat(two_colour(rng, 10, 30), 10, axis=0), 10, axis=1)  # 300 x 100
    path = tmp_path / "big.png"
    Image.fromarray(big).save(path)
    out = tmp_path / "seg"
    res = segment_file(path, [2, 3], out, max_side=150)
    assert res["size"] == (300, 100) and res["segmented_size"] == (150, 50)
    names = {p.name for p in out.iterdir()}
    assert names == {"original.png", "segment.html", "segment.json", "segmented-2.png",
                     "segmented-3.png", "palette-2.png", "palette-3.png", "palette-2.json",
                     "palette-3.json"}
    assert Image.open(out / "segmented-2.png").size == (150, 50)
    assert Image.open(out / "palette-3.png").size == (3 * 48, 48)
    pal = json.loads((out / "palette-2.json").read_text())
    assert pal["n_colors"] == 2 and sum(c["share"] for c in pal["colors"]) == pytest.approx(1)
    assert {c["hex"][:1] for c in pal["colors"]} == {"#"}
    html = (out / "segment.html").read_text()
    assert all(f'src="{n}"' in html for n in ("original.png", "segmented-3.png", "palette-2.png"))
    assert path.read_bytes() == (tmp_path / "big.png").read_bytes()  # the original untouched


def test_claim_out_dir_refuses_foreign_folders_and_files(tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(RunDirError, match="not written by imgclust segment"):
        claim_out_dir(tmp_path, "segment.json", "imgclust segment", ["a.png"])
    (tmp_path / "segment.json").write_text(json.dumps({"written_by": "imgclust segment",
                                                       "files": ["a.png"]}))
    assert claim_out_dir(tmp_path, "segment.json", "imgclust segment", ["a.png"]) == ["a.png"]
    with pytest.raises(RunDirError, match="mine.txt exists and was not written"):
        claim_out_dir(tmp_path, "segment.json", "imgclust segment", ["mine.txt"])
    (tmp_path / "segment.json").write_text("not json")
    with pytest.raises(RunDirError, match="not written by"):
        claim_out_dir(tmp_path, "segment.json", "imgclust segment", ["a.png"])
    with pytest.raises(RunDirError, match="is a file"):
        claim_out_dir(tmp_path / "mine.txt", "segment.json", "imgclust segment", [])


def test_cli_segment_rerun_replaces_only_its_own_files(rng, tmp_path):
    path = tmp_path / "two.png"
    Image.fromarray(two_colour(rng)).save(path)
    out = tmp_path / "seg"
    p = segment_cli(str(path), "--colors", "2", "--colors", "4", "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert "2 colours: #" in p.stdout and "50.0%" in p.stdout
    marker = json.loads((out / "segment.json").read_text())
    assert marker["written_by"] == "imgclust segment" and "segmented-4.png" in marker["files"]
    (out / "notes.txt").write_text("mine")  # a user's file added beside ours
    p = segment_cli(str(path), "-c", "3", "--out", str(out))
    assert p.returncode == 0, p.stderr
    names = {q.name for q in out.iterdir()}
    assert "segmented-3.png" in names and "segmented-2.png" not in names  # stale output removed
    assert (out / "notes.txt").read_text() == "mine"


def test_cli_segment_refuses_an_empty_out(rng, tmp_path):
    path = tmp_path / "two.png"
    Image.fromarray(two_colour(rng)).save(path)
    p = segment_cli(str(path), "--out", "")
    assert p.returncode == 2 and "is empty" in p.stderr
    assert [q.name for q in tmp_path.iterdir()] == ["two.png"]


def test_cli_segment_refuses_a_users_folder(rng, tmp_path):
    path = tmp_path / "two.png"
    Image.fromarray(two_colour(rng)).save(path)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "segmented-2.png").write_bytes(b"my own file")
    p = segment_cli(str(path), "--colors", "2", "--out", str(out))
    assert p.returncode == 1 and "refusing" in p.stderr and p.stderr.count("\n") == 1
    assert [q.name for q in out.iterdir()] == ["segmented-2.png"]
    assert (out / "segmented-2.png").read_bytes() == b"my own file"


@pytest.mark.parametrize("content,args,code,message", [
    (b"hello", ["--colors", "2"], 1, "not an image"),
    (None, ["--colors", "0"], 2, "must be a positive integer"),
    (None, ["--seed", "-1"], 2, "--seed"),
])
def test_cli_segment_errors(rng, tmp_path, content, args, code, message):
    path = tmp_path / "x.png"
    if content is None:
        Image.fromarray(two_colour(rng)).save(path)
    else:
        path.write_bytes(content)
    p = segment_cli(str(path), *args, "--out", str(tmp_path / "seg"))
    assert p.returncode == code and message in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "seg").exists()
