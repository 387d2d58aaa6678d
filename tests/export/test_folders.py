"""Per-cluster export: copy never overwrites, link, journaled move, undo, crashes, full disks."""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import imgclust
from imgclust.errors import ImgclustError, RunDirError
from imgclust.export import JOURNAL, PLAN, export_clusters, undo
from imgclust.export import folders
from imgclust.io import KILL_ENV

RUN = dict(features="pixels:8", method="kmeans", k=3)


def run_api(*args, **kwargs):
    """``imgclust.run(...)``: the function, taken from its package (once ``imgclust.run`` the
    package is imported, it shadows the lazy attribute of the same name)."""
    from imgclust.run import run

    return run(*args, **kwargs)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (relative path -> bytes)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def images(tmp_path: Path, make_colors) -> Path:
    """Three colour groups; ``other/red_0.png`` repeats the name of ``red/red_0.png``."""
    root = tmp_path / "images"
    make_colors(root, n_per=5, size=16)
    (root / "other").mkdir()
    shutil.copy2(root / "red" / "red_0.png", root / "other" / "red_0.png")
    return root


def exported(out: Path) -> list[Path]:
    return sorted(p for p in (out / "clusters").rglob("*") if not p.is_dir())


def no_part_files(*roots: Path) -> bool:
    return not [p for r in roots for p in r.rglob("*.part")]


def test_copy_suffixes_collisions_and_never_overwrites(images, tmp_path):
    before = snapshot(images)
    out = tmp_path / "run"
    res = run_api(images, out, **RUN, export="copy")
    assert snapshot(images) == before
    files = exported(out)
    assert len(files) == len(before) == 16
    reds = sorted(p.name for p in files if p.name.startswith("red_0"))
    assert reds == ["red_0.png", "red_0_1.png"]
    # export.csv maps every id to its file, and each file equals its original
    rows = (out / PLAN).read_text().splitlines()[1:]
    assert len(rows) == 16
    for row in rows:
        image_id, cluster, mode, source, dest = row.split(",")
        assert mode == "copy" and (out / dest).read_bytes() == before[image_id]
        assert dest.startswith(f"clusters/cluster_{int(cluster):02d}/")
    # exporting again into the same folders adds suffixed copies, leaves every file as it was
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    (files[0]).write_bytes(b"edited by the user")
    export_clusters(res, out, mode="copy")
    assert files[0].read_bytes() == b"edited by the user"
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items() if p != files[0])
    assert len(exported(out)) == 32 and (out / "clusters" / "cluster_00").is_dir()


def test_resume_rebuilds_export_but_keeps_user_files(images, tmp_path):
    out = tmp_path / "run"
    run_api(images, out, **RUN, export="copy")
    first = {str(p.relative_to(out)) for p in exported(out)}
    some = exported(out)[3]
    some.write_bytes(b"changed by the user")
    (some.parent / "note.txt").write_text("mine")
    run_api(images, out, **RUN, export="copy")  # same run again: resumed
    now = {str(p.relative_to(out)) for p in exported(out)}
    assert some.read_bytes() == b"changed by the user"
    assert (some.parent / "note.txt").read_text() == "mine"
    stem, ext = os.path.splitext(some.name)
    assert now == first | {str((some.parent / "note.txt").relative_to(out)),
                           str((some.parent / f"{stem}_1{ext}").relative_to(out))}


def test_non_utf8_file_names_survive_export_and_re_export(images, tmp_path):
    """A Latin-1 file name is exported under its own bytes and removed again on a re-export."""
    raw = os.path.join(os.fsencode(images / "red"), b"caf\xe9.png")
    shutil.copy2(images / "red" / "red_1.png", os.fsdecode(raw))
    out = tmp_path / "run"
    run_api(images, out, **RUN, export="copy")
    names = [os.fsencode(p.name) for p in exported(out)]
    assert b"caf\xe9.png" in names and len(names) == 17
    run_api(images, out, **RUN, export="copy", overwrite=True)  # reads export.csv back
    assert sorted(os.fsencode(p.name) for p in exported(out)) == sorted(names)


def test_link_points_at_the_originals(images, tmp_path):
    out = tmp_path / "run"
    run_api(images, out, **RUN, export="link")
    files = exported(out)
    assert len(files) == 16 and all(p.is_symlink() for p in files)
    assert {Path(os.readlink(p)).relative_to(images.resolve()).as_posix() for p in files} == \
        set(snapshot(images))


def test_array_source_exports_png_files(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    imgs = np.concatenate([np.full((6, 8, 8), v, np.uint8) for v in (0, 120, 250)])
    imgs = np.clip(imgs + rng.integers(0, 5, imgs.shape), 0, 255).astype(np.uint8)
    np.savez(tmp_path / "a.npz", images=imgs)
    out = tmp_path / "run"
    run_api(tmp_path / "a.npz", out, **RUN, export="copy")
    files = exported(out)
    assert len(files) == 18 and all(p.suffix == ".png" for p in files)
    for p in files:
        i = int(p.stem)
        np.testing.assert_array_equal(np.asarray(Image.open(p)), imgs[i])
    with pytest.raises(imgclust.ImgclustError, match="needs files"):
        run_api(tmp_path / "a.npz", tmp_path / "run2", **RUN, export="move")


def test_move_writes_the_journal_before_the_first_move(images, tmp_path, monkeypatch):
    out = tmp_path / "run"
    seen = []
    real_move = folders._move

    def spy(src, dst):
        if not seen:
            lines = (out / JOURNAL).read_text().splitlines()
            seen.append(len(lines))
            assert {json.loads(x)["src"] for x in lines} == \
                {os.path.abspath(images / i) for i in snapshot(images)}
        real_move(src, dst)

    monkeypatch.setattr(folders, "_move", spy)
    run_api(images, out, **RUN, export="move")
    assert seen == [16]


def test_move_then_undo_restores_every_file(images, tmp_path):
    before = snapshot(images)
    out = tmp_path / "run"
    run_api(images, out, **RUN, export="move")
    assert snapshot(images) == {}  # every file moved
    assert sorted(p.read_bytes() for p in exported(out)) == sorted(before.values())
    # a run into this folder now must not start over the moved files
    with pytest.raises(RunDirError, match="imgclust undo"):
        run_api(images, out, **RUN, export="move", overwrite=True)
    assert undo(out) == {"restored": 16, "already_in_place": 0, "missing": 0}
    assert snapshot(images) == before
    assert not (out / JOURNAL).exists() and (out / "export-journal.undone").exists()
    with pytest.raises(RunDirError, match="nothing to undo"):
        undo(out)


def test_move_failing_midway_then_undo_restores_all(images, tmp_path, monkeypatch):
    before = snapshot(images)
    out = tmp_path / "run"
    real_move, calls = folders._move, []

    def flaky(src, dst):
        calls.append(src)
        if len(calls) > 5:
            raise PermissionError(errno.EACCES, "Permission denied", str(src))
        real_move(src, dst)

    monkeypatch.setattr(folders, "_move", flaky)
    with pytest.raises(ImgclustError, match=r"stopped after 5 of 16 files.*imgclust undo"):
        run_api(images, out, **RUN, export="move")
    monkeypatch.undo()
    assert len(snapshot(images)) == 11 and len(exported(out)) == 5
    assert undo(out) == {"restored": 5, "already_in_place": 11, "missing": 0}
    assert snapshot(images) == before
    # once undone, the same run resumes and completes
    run_api(images, out, **RUN, export="move")
    assert sorted(p.read_bytes() for p in exported(out)) == sorted(before.values())
    undo(out)
    assert snapshot(images) == before


def test_process_killed_mid_move_then_undo_restores_all(images, tmp_path):
    before = snapshot(images)
    out = tmp_path / "run"
    args = [sys.executable, "-m", "imgclust.cli"]
    env = {**os.environ, KILL_ENV: "export:5"}
    cmd = [*args, "run", str(images), "-o", str(out), "-f", "pixels:8", "-m", "kmeans", "-k", "3",
           "--export", "move", "-q", "--no-report"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert len(exported(out)) == 5 and len(snapshot(images)) == 11
    env.pop(KILL_ENV)
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "imgclust undo" in again.stderr
    fix = subprocess.run([*args, "undo", str(out)], env=env, capture_output=True, text=True,
                         timeout=120)
    assert fix.returncode == 0, fix.stderr
    assert "restored 5 files, 11 already in place, 0 missing" in fix.stdout
    assert snapshot(images) == before


def _enospc_after(n: int, real):
    """A copy function that fails like a full disk after ``n`` files, leaving half a file."""
    count = []

    def copy(src, dst, *a, **kw):
        if len(count) >= n:
            Path(dst).write_bytes(Path(src).read_bytes()[:10])  # a partial write, then the error
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        count.append(src)
        return real(src, dst, *a, **kw)

    return copy


def test_full_disk_during_copy_loses_nothing(images, tmp_path, monkeypatch):
    before = snapshot(images)
    out = tmp_path / "run"
    monkeypatch.setattr(folders.shutil, "copy2", _enospc_after(4, shutil.copy2))
    with pytest.raises(ImgclustError, match=r"stopped after 4 of 16.*No space left on device"
                                            r".*original images are untouched"):
        run_api(images, out, **RUN, export="copy")
    monkeypatch.undo()
    assert snapshot(images) == before
    assert no_part_files(out, images)
    files = exported(out)
    assert len(files) == 4 and all(p.read_bytes() in before.values() for p in files)


def test_full_disk_during_cross_device_move_then_undo(images, tmp_path, monkeypatch):
    before = snapshot(images)
    out = tmp_path / "run"

    def rename(src, dst):  # as if clusters/ were on another file system
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(src))

    monkeypatch.setattr(folders.os, "rename", rename)
    monkeypatch.setattr(folders.shutil, "copy2", _enospc_after(6, shutil.copy2))
    with pytest.raises(ImgclustError, match=r"stopped after 6 of 16.*No space.*imgclust undo"):
        run_api(images, out, **RUN, export="move")
    monkeypatch.undo()
    assert no_part_files(out, images)
    assert len(snapshot(images)) == 10 and len(exported(out)) == 6
    assert undo(out)["restored"] == 6
    assert snapshot(images) == before


def test_undo_refuses_a_damaged_journal(images, tmp_path):
    out = tmp_path / "run"
    run_api(images, out, **RUN, export="move")
    with open(out / JOURNAL, "a") as f:
        f.write('{"src": "/x", "dst')  # a torn line
    with pytest.raises(RunDirError, match="line 17 is damaged"):
        undo(out)
    assert snapshot(images) == {}  # nothing half-undone
    (out / JOURNAL).write_text("".join((out / JOURNAL).read_text().splitlines(True)[:16]))
    assert undo(out)["restored"] == 16


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real 160 KiB tmpfs (needs root and mount rights; skipped otherwise)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture
def big_images(tmp_path: Path, make_colors) -> Path:
    """Three colour groups of noisy 96x96 PNGs (about 28 KB each, 15 files)."""
    root = tmp_path / "big"
    make_colors(root, n_per=5, size=96)
    return root


def test_real_full_disk_copy_and_move(big_images, small_tmpfs):
    before = snapshot(big_images)
    assert sum(map(len, before.values())) > 300_000  # more than the tmpfs holds
    out = small_tmpfs / "run"
    with pytest.raises(ImgclustError, match="No space left on device"):
        run_api(big_images, out, **RUN, export="copy")
    assert snapshot(big_images) == before
    assert no_part_files(small_tmpfs)
    for p in exported(out):
        assert p.read_bytes() in before.values()  # every exported file is whole
    shutil.rmtree(out)
    # move across file systems (images on disk, run folder on the tmpfs): copy, then delete
    with pytest.raises(ImgclustError, match="No space left on device.*imgclust undo"):
        run_api(big_images, out, **RUN, export="move")
    assert no_part_files(small_tmpfs, big_images)
    moved = exported(out)
    assert 0 < len(moved) < 15 and len(snapshot(big_images)) == 15 - len(moved)
    assert undo(out)["restored"] == len(moved)
    assert snapshot(big_images) == before
