"""Issue 11: the thumbnail cache removes only what it wrote, and does not remember an image as
missing when only its file was away (``--export move``, then ``undo``)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from imgclust.errors import ImgclustError
from imgclust.report import build_report
from imgclust.report import thumbs
from imgclust.report.thumbs import make_thumbnails, thumb_name

MANIFEST = "manifest.json"

RUN = dict(features="pixels:8", method="kmeans", k=3)


def run_api(*args, **kwargs):
    """``imgclust.run(...)``: the function, taken from its package (once ``imgclust.run`` the
    package is imported, it shadows the lazy attribute of the same name)."""
    from imgclust.run import run

    return run(*args, **kwargs)


@pytest.fixture
def images(tmp_path: Path, make_colors) -> Path:
    root = tmp_path / "images"
    make_colors(root, n_per=4, size=40)  # over 32 px: one JPEG per image
    return root


class Folder:
    """A minimal source: ``read(id)`` decodes ``root/id`` like a folder source does."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def read(self, image_id: str):
        from imgclust.sources.decode import decode_image

        return decode_image(str(self.root / image_id), image_id)


def _ids(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))


def user_files(run_dir: Path) -> dict[str, bytes]:
    files = {"thumbs/notes.txt": b"mine", "thumbs/000/holiday.jpg": b"my photo",
             "thumbs/mean_x.png": b"not a mean", "thumbs/007/3.jpg": b"a 3.jpg of mine"}
    for name, data in files.items():
        (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / name).write_bytes(data)
    return files


def test_new_thumbnails_keep_the_users_files(images, tmp_path):
    """Clusters change (another key): the old thumbnails go, files of the user's stay."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    ids = _ids(images)
    labels = np.repeat([0, 1, 2], 4)
    mine = user_files(run_dir)
    ts = make_thumbnails(Folder(images), ids, labels, run_dir, "key-1")
    assert not ts.missing and (run_dir / thumb_name(0)).is_file()
    ts = make_thumbnails(Folder(images), ids[:6], labels[:6], run_dir, "key-2")
    assert not ts.missing
    assert not (run_dir / thumb_name(8)).exists()  # row 8 of the first set, removed
    assert {n: (run_dir / n).read_bytes() for n in mine} == mine
    assert thumbs.remove_own_thumbs(run_dir / "thumbs") == 6 + 2 + 0  # 6 JPEGs, 2 means
    assert {n: (run_dir / n).read_bytes() for n in mine} == mine
    assert not (run_dir / "thumbs" / MANIFEST).exists()


def test_a_file_of_the_users_at_a_thumbnail_name_is_refused(images, tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "thumbs" / "000").mkdir(parents=True)
    (run_dir / thumb_name(2)).write_bytes(b"mine")
    with pytest.raises(ImgclustError, match=r"2\.jpg.*did not write"):
        make_thumbnails(Folder(images), _ids(images), np.repeat([0, 1, 2], 4), run_dir, "k")
    assert (run_dir / thumb_name(2)).read_bytes() == b"mine"
    (run_dir / thumb_name(2)).unlink()
    (run_dir / "thumbs" / MANIFEST).write_text("my own notes")
    with pytest.raises(ImgclustError, match="manifest"):
        make_thumbnails(Folder(images), _ids(images), np.repeat([0, 1, 2], 4), run_dir, "k")
    assert (run_dir / "thumbs" / MANIFEST).read_text() == "my own notes"


def test_killed_thumbnails_are_cleaned_by_the_next_build(images, tmp_path, monkeypatch):
    """The manifest is written before the first thumbnail: a build killed part-way leaves
    files the next build knows as its own."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    ids, labels = _ids(images), np.repeat([0, 1, 2], 4)
    real, calls = thumbs._one, []

    def dying(*a, **kw):
        calls.append(1)
        if len(calls) > 5:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(thumbs, "_one", dying)
    with pytest.raises(KeyboardInterrupt):
        make_thumbnails(Folder(images), ids, labels, run_dir, "k", workers=1)
    monkeypatch.undo()
    assert json.loads((run_dir / "thumbs" / MANIFEST).read_text())["state"] == "writing"
    ts = make_thumbnails(Folder(images), ids, labels, run_dir, "k")
    assert not ts.missing and thumbs.load_cached(run_dir, "k") is not None


def test_report_after_a_move_and_after_undo_shows_every_image(images, tmp_path):
    from imgclust.export import undo

    out = tmp_path / "run"
    run_api(images, out, **RUN, export="move")
    assert not list(images.rglob("*.png"))
    html = build_report(out, map_method="pca").read_text(encoding="utf-8")
    assert 'class="thumb missing"' not in html and "file vanished" not in html
    undo(out)
    html = build_report(out, map_method="pca").read_text(encoding="utf-8")
    assert 'class="thumb missing"' not in html and "file vanished" not in html


def test_an_image_away_for_a_while_is_not_cached_as_missing(images, tmp_path):
    out = tmp_path / "run"
    run_api(images, out, **RUN)
    away = tmp_path / "away"
    shutil.move(images / "red", away)
    html = build_report(out, map_method="pca").read_text(encoding="utf-8")
    assert html.count('class="thumb missing"') >= 1
    shutil.move(away, images / "red")
    kept = {p: p.stat().st_mtime_ns for p in (out / "thumbs").rglob("*.jpg")}
    html = build_report(out, map_method="pca").read_text(encoding="utf-8")
    assert 'class="thumb missing"' not in html
    # only the four images that were away were made again
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())
    assert len(list((out / "thumbs").rglob("*.jpg"))) == len(kept) + 4
    m = json.loads((out / "thumbs" / MANIFEST).read_text())
    assert m["state"] == "done" and m["absent"] == [] and m["missing"] == {}


def test_sheet_thumbnails_recheck_an_image_that_was_away(tmp_path, make_colors):
    root = tmp_path / "tiny"
    make_colors(root, n_per=4, size=12)  # 12 px: PNG sheets
    ids, labels = _ids(root), np.repeat([0, 1, 2], 4)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    os.rename(root / ids[0], tmp_path / "x.png")
    ts = make_thumbnails(Folder(root), ids, labels, run_dir, "k")
    assert ts.mode == "sheet" and list(ts.missing) == [0]
    assert thumbs.load_cached(run_dir, "k") is None  # not cached as missing
    os.rename(tmp_path / "x.png", root / ids[0])
    ts = make_thumbnails(Folder(root), ids, labels, run_dir, "k")
    assert not ts.missing and thumbs.load_cached(run_dir, "k") is not None


def test_rerun_with_overwrite_and_report_keep_the_users_files(images, tmp_path):
    """Other clusters (--overwrite, another k), then the report again: the earlier thumbnails
    are replaced, the user's files in thumbs/ stay."""
    out = tmp_path / "run"
    run_api(images, out, **RUN)
    build_report(out, map_method="pca")
    mine = user_files(out)
    run_api(images, out, **{**RUN, "k": 2}, overwrite=True)
    html = build_report(out, map_method="pca").read_text(encoding="utf-8")
    assert 'class="thumb missing"' not in html
    assert {n: (out / n).read_bytes() for n in mine} == mine
    assert not (out / "thumbs" / "mean_2.png").exists()  # k=3's third mean went
