"""Issue 11, data loss in export and undo: long names, symlinks, absolute plans, conflicts,
missing files, and temporary names that clash with files of the user's."""
from __future__ import annotations

import csv
import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imgclust.errors import ImgclustError
from imgclust.export import JOURNAL, PLAN, export_clusters, folders, undo

RUN = dict(features="pixels:8", method="kmeans", k=3)


def run_api(*args, **kwargs):
    """``imgclust.run(...)``: the function, taken from its package (once ``imgclust.run`` the
    package is imported, it shadows the lazy attribute of the same name)."""
    from imgclust.run import run

    return run(*args, **kwargs)
CLI = [sys.executable, "-m", "imgclust.cli"]
LONG = "a" * 247 + ".png"  # 251 bytes: valid where NAME_MAX is 255


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=180, cwd=cwd)


def run_args(src: Path | str, out: Path | str, *extra: str, k: str = "3") -> list[str]:
    return ["run", str(src), "--out", str(out), "-q", "--no-report", "-f", "pixels:8",
            "-m", "kmeans", "-k", k, *extra]


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def exported(out: Path) -> list[Path]:
    return sorted(p for p in (out / "clusters").rglob("*") if not p.is_dir())


@pytest.fixture
def images(tmp_path: Path, make_colors) -> Path:
    root = tmp_path / "images"
    make_colors(root, n_per=4, size=12)
    return root


def test_part_name_fits_the_file_name_limit(tmp_path):
    limit = folders.name_max(tmp_path)
    for name in ("x.png", LONG, "é" * 127 + ".png"):
        tmp = folders.part_name(tmp_path / name)
        assert len(os.fsencode(tmp.name)) <= limit and tmp.parent == tmp_path
        assert tmp.name.startswith(".") and tmp.name.endswith(".part")
        tmp.write_bytes(b"x")  # creatable: no ENAMETOOLONG
    # two long names get two temporary names
    assert folders.part_name(tmp_path / LONG) != folders.part_name(tmp_path / ("b" + LONG[1:]))


def test_free_name_suffix_fits_the_file_name_limit(tmp_path):
    name = "b" * 251 + ".png"  # 255 bytes: a "_1" would make it 257
    (tmp_path / name).write_bytes(b"taken")
    got = folders.free_name(tmp_path, name, set())
    assert got.name != name and got.name.endswith("_1.png")
    assert len(os.fsencode(got.name)) <= folders.name_max(tmp_path)
    got.write_bytes(b"x")


def test_long_file_name_move_undo_and_copy(images, tmp_path):
    """A 251-byte name: moved and put back by undo (its temporary names fit too), and copied."""
    shutil.copy2(images / "red" / "red_0.png", images / "red" / LONG)
    before = snapshot(images)
    out = tmp_path / "run"
    r = cli(*run_args(images, out, "--export", "move"))
    assert r.returncode == 0, r.stderr
    assert snapshot(images) == {}
    r = cli("undo", str(out))
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and snapshot(images) == before
    r = cli(*run_args(images, tmp_path / "copied", "--export", "copy"))
    assert r.returncode == 0, r.stderr
    names = [p.name for p in exported(tmp_path / "copied")]
    assert LONG in names and len(names) == len(before)
    assert snapshot(images) == before


def test_a_clash_of_255_byte_names_gets_a_suffix_that_fits(images, tmp_path):
    clash = "b" * 251 + ".png"
    shutil.copy2(images / "red" / "red_1.png", images / "red" / clash)
    (images / "more").mkdir()
    shutil.copy2(images / "red" / "red_2.png", images / "more" / clash)
    out = tmp_path / "run"
    run_api(images, out, **RUN, export="copy")  # both red: one cluster folder
    names = sorted(p.name for p in exported(out) if p.name.startswith("bbb"))
    assert len(names) == 2 and names[1] == clash and names[0].endswith("_1.png")
    assert all(len(os.fsencode(n)) <= 255 for n in names)


def _link_folder(images: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """red/rel.png -> ../../store/r.png (relative) and red/abs.png -> /…/store/a.png."""
    store = tmp_path / "store"
    store.mkdir()
    shutil.copy2(images / "red" / "red_0.png", store / "r.png")
    shutil.copy2(images / "red" / "red_1.png", store / "a.png")
    rel, ab = images / "red" / "rel.png", images / "red" / "abs.png"
    os.symlink(os.path.join("..", "..", "store", "r.png"), rel)
    os.symlink(store / "a.png", ab)
    return store, rel, ab


def test_move_of_symlinks_then_undo_puts_the_links_back(images, tmp_path):
    store, rel, ab = _link_folder(images, tmp_path)
    texts = {rel: os.readlink(rel), ab: os.readlink(ab)}
    out = tmp_path / "run"
    r = cli(*run_args(images, out, "--export", "move"))
    assert r.returncode == 0, r.stderr
    assert not os.path.lexists(rel) and not os.path.lexists(ab)
    lines = (out / JOURNAL).read_text()
    assert str(rel) in lines and str(store / "r.png") not in lines  # the link, not its target
    links = [p for p in exported(out) if p.is_symlink()]
    assert len(links) == 2 and all(p.exists() for p in links)  # they work from clusters/
    r = cli("undo", str(out))
    assert r.returncode == 0, r.stderr
    for link, text in texts.items():
        assert link.is_symlink() and os.readlink(link) == text
    assert (rel.read_bytes(), ab.read_bytes()) == ((store / "r.png").read_bytes(),
                                                  (store / "a.png").read_bytes())
    assert not exported(out) and sorted(p.name for p in store.iterdir()) == ["a.png", "r.png"]


def test_cross_device_move_keeps_a_symlink_a_symlink(images, tmp_path, monkeypatch):
    store, rel, ab = _link_folder(images, tmp_path)
    texts = {rel: os.readlink(rel), ab: os.readlink(ab)}

    def rename(src, dst):  # as if clusters/ were on another file system
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(src))

    monkeypatch.setattr(folders.os, "rename", rename)
    out = tmp_path / "run"
    run_api(images, out, **RUN, export="move")
    assert all(p.is_symlink() for p in exported(out) if p.name in ("rel.png", "abs.png"))
    monkeypatch.undo()
    undo(out)
    for link, text in texts.items():
        assert link.is_symlink() and os.readlink(link) == text


def test_dangling_symlink_moved_and_put_back(images, tmp_path):
    """A link whose target goes away after the scan is moved as a link and put back by undo."""
    store, rel, ab = _link_folder(images, tmp_path)
    res = run_api(images, tmp_path / "r0", **RUN)
    (store / "a.png").unlink()  # abs.png now dangles
    out = tmp_path / "run"
    out.mkdir()
    export_clusters(res, out, mode="move")
    assert not os.path.lexists(ab)
    assert undo(out)["missing"] == 0
    assert ab.is_symlink() and os.readlink(ab) == str(store / "a.png")


def test_export_csv_sources_are_absolute_and_a_rerun_elsewhere_replaces_the_copies(
        images, tmp_path):
    """Run with a relative source from one folder, rerun with --overwrite and another k from
    another: the old copies are recognised and removed (no mix of two clusterings)."""
    a = tmp_path
    b = tmp_path / "elsewhere"
    b.mkdir()
    n = len(snapshot(images))
    r = cli(*run_args("images", "run", "--export", "copy", k="2"), cwd=a)
    assert r.returncode == 0, r.stderr
    with open(a / "run" / PLAN, newline="") as f:
        rows = list(csv.DictReader(f))
    r = cli(*run_args(os.path.join("..", "images"), os.path.join("..", "run"),
                      "--export", "copy", "--overwrite", k="3"), cwd=b)
    assert r.returncode == 0, r.stderr
    assert len(exported(a / "run")) == n
    assert len({p.parent.name for p in exported(a / "run")}) == 3
    assert rows and all(os.path.isabs(row["source"]) for row in rows)


def test_undo_with_the_original_path_taken_is_a_conflict(images, tmp_path):
    before = snapshot(images)
    out = tmp_path / "run"
    assert cli(*run_args(images, out, "--export", "move")).returncode == 0
    new = images / "red" / "red_0.png"
    new.write_bytes(b"a new file of the user's")
    r = cli("undo", str(out))
    assert r.returncode == 1
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "red_0.png" in err and "clusters" in err
    assert new.read_bytes() == b"a new file of the user's"
    stays = [p for p in exported(out) if p.name == "red_0.png"]
    assert len(stays) == 1 and stays[0].read_bytes() == before["red/red_0.png"]
    assert (out / JOURNAL).exists()  # not marked done
    # once the user moves the new file away, undo completes
    new.rename(tmp_path / "mine.png")
    r = cli("undo", str(out))
    assert r.returncode == 0, r.stderr
    assert snapshot(images) == before and not (out / JOURNAL).exists()


def test_undo_removes_the_duplicate_left_by_a_crashed_cross_device_move(images, tmp_path):
    """Killed between copy and delete: the same bytes at both paths are no conflict."""
    before = snapshot(images)
    out = tmp_path / "run"
    run_api(images, out, **RUN, export="move")
    some = exported(out)[0]
    orig = next(images / k for k, v in before.items() if v == some.read_bytes())
    shutil.copy2(some, orig)
    assert undo(out) == {"restored": len(before) - 1, "already_in_place": 1, "missing": 0}
    assert snapshot(images) == before and not exported(out)


def test_undo_with_a_missing_file_exits_1(images, tmp_path):
    out = tmp_path / "run"
    assert cli(*run_args(images, out, "--export", "move")).returncode == 0
    exported(out)[0].unlink()
    r = cli("undo", str(out))
    assert r.returncode == 1
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:") and "1 " in err \
        and "missing" in err
    assert (out / JOURNAL).exists()


def test_user_file_at_the_temporary_name_is_not_overwritten(images, tmp_path):
    res = run_api(images, tmp_path / "r0", **RUN)
    out = tmp_path / "run"
    for c in range(3):
        d = out / "clusters" / f"cluster_{c:02d}"
        d.mkdir(parents=True)
        folders.part_name(d / "red_0.png").write_bytes(b"mine")
        (d / ".red_0.png.part").write_bytes(b"mine too")
    try:
        export_clusters(res, out, mode="copy")
    except ImgclustError as exc:
        assert "red_0.png" in str(exc)
    for c in range(3):
        d = out / "clusters" / f"cluster_{c:02d}"
        assert folders.part_name(d / "red_0.png").read_bytes() == b"mine"
        assert (d / ".red_0.png.part").read_bytes() == b"mine too"


def test_rerun_and_undo_keep_user_files_named_like_part_files(images, tmp_path):
    """A hidden ``.NAME.part`` of the user's (a browser's half download, say) in the source
    folder survives move + undo; one in clusters/ survives a rerun that replaces the export."""
    src_part = images / "red" / ".red_0.png.part"
    src_part.write_bytes(b"half a download")
    out = tmp_path / "run"
    run_api(images, out, **RUN, export="move")
    undo(out)
    assert src_part.read_bytes() == b"half a download"
    out2 = tmp_path / "run2"
    run_api(images, out2, **RUN, export="copy")
    mine = exported(out2)[0].with_name(".notes.part")
    mine.write_bytes(b"mine")
    run_api(images, out2, **{**RUN, "k": 2}, export="copy", overwrite=True)
    assert mine.read_bytes() == b"mine"


def test_clusters_path_taken_by_a_file_is_an_error_not_a_traceback(images, tmp_path):
    res = run_api(images, tmp_path / "r0", **RUN)
    out = tmp_path / "run"
    out.mkdir()
    (out / "clusters").write_text("a file of mine")
    with pytest.raises(ImgclustError, match="clusters"):
        export_clusters(res, out, mode="copy")
    assert (out / "clusters").read_text() == "a file of mine"


def test_undo_after_the_run_folder_was_moved(images, tmp_path):
    before = snapshot(images)
    out = tmp_path / "run"
    run_api(images, out, **RUN, export="move")
    moved = tmp_path / "elsewhere" / "run"
    moved.parent.mkdir()
    out.rename(moved)
    assert undo(moved) == {"restored": len(before), "already_in_place": 0, "missing": 0}
    assert snapshot(images) == before


def test_a_tampered_export_csv_removes_nothing_outside_clusters(images, tmp_path):
    out = tmp_path / "run"
    run_api(images, out, **RUN, export="copy")
    orig = images / "red" / "red_0.png"
    with open(out / PLAN, "a", newline="") as f:
        csv.writer(f).writerow(["x", 0, "copy", str(orig), os.path.relpath(orig, out)])
    folders.remove_export(out)
    assert orig.is_file() and not (out / "clusters").exists()


def test_move_and_undo_of_a_non_utf8_name(images, tmp_path):
    raw = os.path.join(os.fsencode(images / "red"), b"caf\xe9.png")
    shutil.copy2(images / "red" / "red_1.png", os.fsdecode(raw))
    before = snapshot(images)
    out = tmp_path / "run"
    run_api(images, out, **RUN, export="move")
    assert not os.path.exists(raw)
    assert undo(out)["restored"] == len(before)
    assert os.path.exists(raw) and snapshot(images) == before
