"""bench/sets: the helpers that build the labelled real folders (issue 12), on images made
here; the built folders themselves are checked only where /work/bench-data holds them."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import sets  # noqa: E402


def _rgba(path: Path, size=(40, 30)) -> Path:
    a = np.zeros((size[1], size[0], 4), np.uint8)
    a[..., 0] = 200
    a[5:20, 5:20, 3] = 255
    Image.fromarray(a, "RGBA").save(path)
    return path


def test_evenly_takes_both_ends_and_keeps_short_lists():
    assert sets.evenly(list(range(10)), 3) == [0, 4, 9]  # linspace 0, 4.5, 9 rounds to 4
    assert sets.evenly([1, 2], 5) == [1, 2]


def test_unique_drops_byte_duplicates_across_calls(tmp_path):
    a = _rgba(tmp_path / "a.png")
    b = tmp_path / "b.png"
    b.write_bytes(a.read_bytes())
    c = _rgba(tmp_path / "c.png", (12, 12))
    seen: set[str] = set()
    assert sets.unique([c, b, a], seen) == [a, c]
    assert sets.unique([b], seen) == []


@pytest.mark.parametrize("fmt", [None, "png", "jpg", "webp", "gif", "bmp", "tiff"])
def test_save_writes_each_format_pillow_reads_back(tmp_path, fmt):
    src = _rgba(tmp_path / "src.png")
    dest = sets.save(src, tmp_path / "out" / "x", fmt, max_side=20 if fmt == "jpg" else None)
    assert dest.suffix == "." + (fmt or "png") and dest.is_file()
    with Image.open(dest) as im:
        im.load()
        assert im.format == {None: "PNG", "jpg": "JPEG"}.get(fmt, (fmt or "png").upper())
        assert im.size == ((20, 15) if fmt == "jpg" else (40, 30))


def test_start_replaces_only_its_own_folder(tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    (user / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit, match="not made by bench.sets"):
        sets.start(user)
    assert (user / "keep.txt").read_text() == "mine"
    own = tmp_path / "own"
    sets.start(own)
    (own / "a").mkdir()
    (own / "a" / "x.png").write_bytes(b"")
    counts = sets.finish(own, "title line\nmore", ["a/x.png <- src"])
    assert counts == {"a": 1}
    assert (own / sets.MARKER).read_text().startswith("title line\n")
    sets.start(own)  # made by an earlier build: replaced
    assert [p.name for p in own.iterdir()] == [sets.MARKER]


BUILT = [n for n in sets.NAMES if (sets.SETS / n / sets.MARKER).is_file()]


@pytest.mark.skipif(not BUILT, reason="no set built in /work/bench-data/sets "
                                      "(python -m bench.sets build)")
@pytest.mark.parametrize("name", BUILT or ["none"])
def test_built_set_meets_the_issue_bounds(name):
    root = sets.SETS / name
    counts = {d.name: sum(1 for f in d.iterdir() if f.is_file())
              for d in root.iterdir() if d.is_dir()}
    assert 3 <= len(counts) <= 12
    assert 100 <= sum(counts.values()) <= 3000
