"""Previews made while a folder is decoded for its features, reused by the report."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

import imgclust
from imgclust.report.thumbs import THUMB_SIDE, _reader
from imgclust.run.thumbstore import LOSSLESS_SIDE, PREVIEW_SIDE, ThumbStore
from imgclust.sources.folder import FolderSource


def _folder(root: Path) -> None:
    rng = np.random.default_rng(0)
    for cls, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        (root / cls).mkdir(parents=True)
        for j in range(6):
            a = np.clip(np.array(colour) + rng.normal(0, 20, (300, 400, 3)), 0, 255)
            Image.fromarray(a.astype(np.uint8)).save(root / cls / f"{j}.png")
    Image.fromarray(np.full((16, 16, 3), 7, np.uint8)).save(root / "red" / "tiny.png")


def test_report_reads_previews_not_files(tmp_path, monkeypatch):
    assert PREVIEW_SIDE >= THUMB_SIDE  # a preview is never smaller than a report thumbnail
    root, out = tmp_path / "imgs", tmp_path / "run"
    _folder(root)
    imgclust.run(root, out, features="pixels:8", method="kmeans", k=2)
    # pixels:8 decodes each file at 8 px: too small for a preview, none is kept (no file)
    assert ThumbStore.of_run(out) is None and not list(out.glob("cache/*/thumbs.sqlite*"))
    out = tmp_path / "run2"
    imgclust.run(root, out, features="pixels:64", method="kmeans", k=2)
    store = ThumbStore.of_run(out)
    assert store is not None
    n = store._db.execute("SELECT count(*) FROM previews").fetchone()[0]
    assert n == 13
    src = FolderSource(root)
    reads: list[str] = []
    real = FolderSource.read
    monkeypatch.setattr(FolderSource, "read", lambda self, i: reads.append(i) or real(self, i))
    read = _reader(src, out)
    img = read("blue/3.png")
    assert reads == [] and max(img.size) == PREVIEW_SIDE
    tiny = read("red/tiny.png")  # small images are kept exactly (PNG)
    assert tiny.size == (16, 16) and 16 <= LOSSLESS_SIDE
    assert np.asarray(tiny.convert("RGB")).max() == 7 == np.asarray(tiny.convert("RGB")).min()
    # a file changed since the run is read again, not shown from its stale preview
    p = root / "blue" / "3.png"
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    read("blue/3.png")
    assert reads == ["blue/3.png"]


def test_run_without_previews_falls_back_to_files(tmp_path):
    root, out = tmp_path / "imgs", tmp_path / "run"
    _folder(root)
    imgclust.run(root, out, features="pixels:8", method="kmeans", k=2)
    for p in out.glob("cache/features-*/thumbs.sqlite*"):
        p.unlink()
    assert ThumbStore.of_run(out) is None
    img = _reader(FolderSource(root), out)("red/0.png")
    assert max(img.size) <= 512


def test_previews_that_cannot_be_written_are_dropped(tmp_path, monkeypatch):
    """A full disk while writing previews: nothing of them is kept, the run is not stopped."""
    import sqlite3

    store = ThumbStore(tmp_path / "thumbs.sqlite")
    assert store.put_many([("a", 1, 2, b"x")])
    assert (tmp_path / "thumbs.sqlite").exists()

    def full(self):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(ThumbStore, "_writer", full)
    assert store.put_many([("b\udcff", 1, 2, b"y")]) is False  # a non-UTF-8 name, too
    assert not (tmp_path / "thumbs.sqlite").exists()
    assert ThumbStore.of_run(tmp_path) is None
