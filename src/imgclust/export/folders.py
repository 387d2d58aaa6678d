"""Per-cluster folders: ``DIR/clusters/cluster_00/…``.

Files are sacred: no mode ever overwrites (a clash gets a ``_1``, ``_2``… suffix, and each
write re-checks that its destination is free); ``copy`` goes through a temporary
``.NAME.imgclust.part`` name (created exclusively, so a file of the user's by that name is never
written over), so a full disk leaves no half file; ``move`` first writes a journal of every
planned move (atomically, fsynced), so ``undo`` can put each file back, also after a crash
mid-move. A symlink is moved as a link: ``clusters/`` gets a link to the same target (absolute,
so it works from there) and undo puts the original link text back. Every name fits the folder's
file-name limit (``NAME_MAX``, 255 bytes on most file systems).
"""
from __future__ import annotations

import contextlib
import csv
import errno
import filecmp
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from imgclust.errors import ConfigError, ImgclustError, RunDirError
from imgclust.io import atomic_write_csv, atomic_write_text, fsync_dir, kill_point

JOURNAL = "export-journal.jsonl"
#: every planned destination (id, cluster, mode, source, exported), written before the first file
PLAN = "export.csv"
MODES = ("copy", "link", "move")
#: ends every temporary name export and undo write (``.NAME.imgclust.part``)
PART_SUFFIX = ".imgclust.part"
#: file-name limit in bytes when the file system does not tell (``NAME_MAX`` of ext4, XFS, APFS)
DEFAULT_NAME_MAX = 255


def cluster_folder_name(c: int) -> str:
    return "noise" if c < 0 else f"cluster_{c:02d}"


def name_max(folder: str | Path) -> int:
    """The longest file name, in bytes, that ``folder`` allows.

    Asks the nearest existing folder (``os.pathconf(…, "PC_NAME_MAX")``); 255 where the
    platform does not say.
    """
    p = Path(os.path.abspath(folder))
    while True:
        try:
            n = os.pathconf(p, "PC_NAME_MAX")
            return int(n) if n and n > 0 else DEFAULT_NAME_MAX
        except (OSError, ValueError, AttributeError):  # missing folder; no pathconf (Windows)
            if p.parent == p:
                return DEFAULT_NAME_MAX
            p = p.parent


def _nbytes(name: str) -> int:
    return len(os.fsencode(name))


def _shorten(stem: str, tail: str, limit: int) -> str:
    """``stem + tail``, the stem cut (whole characters) until the name fits ``limit`` bytes."""
    while stem and _nbytes(stem + tail) > limit:
        stem = stem[:-1]
    return stem + tail


def free_name(folder: Path, name: str, taken: set[str], limit: int | None = None) -> Path:
    """``folder/name``, or ``stem_1.ext``, ``stem_2.ext``… if that exists or is planned.

    Names longer than the folder's limit (``limit`` bytes, :func:`name_max` by default) are
    shortened, the extension kept, so a suffix never makes a name the file system refuses.
    """
    limit = name_max(folder) if limit is None else limit
    stem, suffix = os.path.splitext(name)
    if _nbytes(suffix) > limit // 2:  # an "extension" that is most of the name
        stem, suffix = name, ""
    cand, i = _shorten(stem, suffix, limit), 0
    while cand in taken or os.path.lexists(folder / cand):
        i += 1
        cand = _shorten(stem, f"_{i}{suffix}", limit)
    taken.add(cand)
    return folder / cand


def _refuse_existing(dst: Path) -> None:
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, "destination exists; not overwritten", str(dst))


def part_name(dst: Path) -> Path:
    """The temporary name a copy is written under before it is renamed to ``dst``.

    ``.NAME.imgclust.part`` beside ``dst``; where that would pass the folder's file-name limit,
    ``.HASH.imgclust.part`` (a hash of the name), so a name that fits always has a temporary
    name that fits too.
    """
    name = f".{dst.name}{PART_SUFFIX}"
    if _nbytes(name) > name_max(dst.parent):
        name = f".{hashlib.sha256(os.fsencode(dst.name)).hexdigest()[:40]}{PART_SUFFIX}"
    return dst.with_name(name)


def _drop_part(path: Path) -> None:
    """Remove the temporary file of an interrupted copy to ``path``, if there is one."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        part_name(path).unlink()


def _reserve(tmp: Path) -> None:
    """Create ``tmp`` empty, refusing if anything is there (a file of the user's by that name)."""
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, f"its temporary name {tmp.name} is taken by a file "
                              "imgclust did not write; not overwritten", str(tmp)) from None


def _copy_safely(src: Path, dst: Path) -> None:
    """Copy to ``part_name(dst)`` then rename: a full disk or a crash never leaves a half ``dst``."""
    _refuse_existing(dst)
    tmp = part_name(dst)
    _reserve(tmp)
    try:
        shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_png_safely(img: Any, dst: Path) -> None:
    """Save a Pillow image as PNG at ``dst`` through ``part_name(dst)``, never over a file."""
    _refuse_existing(dst)
    tmp = part_name(dst)
    _reserve(tmp)
    try:
        img.save(tmp, format="PNG")
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _link_target(link: str | Path, text: str) -> str:
    """Where a symlink at ``link`` with content ``text`` points, as an absolute path."""
    return os.path.join(os.path.dirname(os.path.abspath(link)), text)


def _move(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``; across file systems copy, then remove the original.

    A symlink stays a symlink (re-made with the same content on another file system, never
    replaced by a copy of its target).
    """
    _refuse_existing(dst)
    try:
        os.rename(src, dst)  # same file system: atomic
    except OSError as exc:
        if exc.errno != errno.EXDEV:  # other file system -> copy, then remove the original
            raise
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        else:
            _copy_safely(src, dst)
        src.unlink()


def _move_link(src: Path, dst: Path, text: str) -> None:
    """Move the symlink ``src`` (content ``text``): ``dst`` gets a link to the same target,
    absolute so that it works from ``clusters/``; then the original link goes."""
    _refuse_existing(dst)
    os.symlink(_link_target(src, text), dst)
    src.unlink()


def export_clusters(result: Any, out_dir: str | Path, mode: str = "copy",
                    progress: bool = False) -> dict[str, Any]:
    """Write one folder per cluster under ``out_dir/clusters``.

    Parameters
    ----------
    result : Result
        A finished run (``imgclust.run``).
    out_dir : str or Path
    mode : {"copy", "link", "move"}
        Array sources (no files) are written as PNG files whatever the mode.

    Returns
    -------
    dict
        ``{"mode": …, "files": n, "folder": …}``.
    """
    if mode not in MODES:
        raise ConfigError(f"export mode {mode!r}; valid: {', '.join(MODES)}")
    out_dir = Path(out_dir)
    base = out_dir / "clusters"
    journal = out_dir / JOURNAL
    if mode == "move" and journal.exists():
        raise RunDirError(f"{journal}: an earlier move was not undone; run 'imgclust undo {out_dir}'")
    recs = {r.id: r for r in result.records}
    plan: list[tuple[str | None, Path, str]] = []  # (absolute source path, destination, image id)
    taken: dict[int, set[str]] = {}
    limits: dict[int, int] = {}
    for image_id, c in zip(result.ids, result.labels_):
        folder = base / cluster_folder_name(int(c))
        rec = recs[image_id]
        # absolute, not resolved: a symlink is the user's file too, and is what gets moved
        path = os.path.abspath(rec.path) if rec.path else None
        name = os.path.basename(rec.path) if rec.path else f"{int(image_id):06d}.png"
        if int(c) not in limits:
            limits[int(c)] = name_max(folder)
        plan.append((path, free_name(folder, name, taken.setdefault(int(c), set()),
                                     limits[int(c)]), image_id))
    if mode == "move" and any(p is None for p, _, _ in plan):
        raise ConfigError("--export move needs files; this source is an array (use copy)")
    for d in sorted({dst.parent for _, dst, _ in plan}):
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # e.g. a file of the user's named clusters
            raise ImgclustError(f"cannot make the export folder {d}: {exc.strerror or exc}; "
                                "nothing was exported") from None
    # the plan first: a resumed or replaced run removes exactly these files (remove_export);
    # absolute sources, so it can be checked from any working directory
    atomic_write_csv(out_dir / PLAN, ["id", "cluster", "mode", "source", "exported"],
                     ((i, int(c), mode, p or "", str(dst.relative_to(out_dir)))
                      for (p, dst, i), c in zip(plan, result.labels_)))
    links: dict[str, str] = {}
    if mode == "move":
        for p, _, _ in plan:
            if p is not None and os.path.islink(p):
                links[p] = os.readlink(p)
        # the whole plan is on disk (atomically, fsynced) before the first file moves
        # "rel": the destination within out_dir, so undo works after the run folder is moved
        lines = "".join(json.dumps({"src": p, "dst": os.path.abspath(dst),
                                    "rel": dst.relative_to(out_dir).as_posix(),
                                    **({"link": links[p]} if p in links else {})},
                                   ensure_ascii=True) + "\n" for p, dst, _ in plan)
        atomic_write_text(journal, lines)
        fsync_dir(out_dir)
    from imgclust.progress import progress_bar

    bar = progress_bar(progress)
    done = 0
    try:
        for src, dst, image_id in bar(plan, desc=f"export ({mode})", unit="file"):
            if src is None:
                save_png_safely(result.source.read(image_id)[1], dst)
            elif mode == "copy":
                _copy_safely(Path(src), dst)
            elif mode == "link":
                os.symlink(Path(src).resolve(), dst)
            elif src in links:
                _move_link(Path(src), dst, links[src])
            else:
                _move(Path(src), dst)
            done += 1
            kill_point(f"export:{done}")
    except OSError as exc:
        hint = (f"; run 'imgclust undo {out_dir}' to put the moved files back" if mode == "move"
                else "; the original images are untouched")
        raise ImgclustError(f"export stopped after {done} of {len(plan)} files, at {src or image_id} "
                            f"-> {dst}: {exc.strerror or exc}{hint}") from None
    return {"mode": mode, "files": done, "folder": str(base)}


def _is_ours(src: str, dst: Path, mode: str) -> bool:
    """Whether ``dst`` is still what export wrote for ``src`` (the user has not replaced it)."""
    if not src:  # a PNG rendered from an array: nothing of the user's can be lost
        return dst.is_file() and not dst.is_symlink()
    if mode == "link":
        return dst.is_symlink() and os.readlink(dst) == str(Path(src).resolve())
    if mode == "copy":
        try:
            return (dst.is_file() and not dst.is_symlink()
                    and filecmp.cmp(src, dst, shallow=True))
        except OSError:  # the original is gone: keep the only copy
            return False
    return False  # a moved file is the user's original: only undo puts it back


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` lies below ``folder`` (its parent resolved: no ``..`` or link out)."""
    try:
        Path(os.path.realpath(path.parent)).relative_to(os.path.realpath(folder))
    except ValueError:
        return False
    return path.name not in ("", ".", "..")


def remove_export(out_dir: str | Path) -> int:
    """Remove the files an earlier export wrote (per ``export.csv``), then empty cluster folders.

    Used when a run is resumed or replaced. Only files that still are what export wrote are
    removed (a copy identical to its original, a link to it, a rendered PNG) and imgclust's own
    temporary ``.imgclust.part`` files; files the user added or changed, and moved originals,
    stay.

    Returns
    -------
    int
        Number of files removed.
    """
    out_dir = Path(out_dir)
    plan = out_dir / PLAN
    base = out_dir / "clusters"
    removed = 0
    if plan.exists():
        with open(plan, encoding="utf-8", errors="surrogateescape", newline="") as f:
            for row in csv.DictReader(f):
                dst = out_dir / row["exported"]
                if not _inside(dst, base):  # a damaged or edited plan: only clusters/ is ours
                    continue
                _drop_part(dst)
                if os.path.lexists(dst) and _is_ours(row["source"], dst, row["mode"]):
                    dst.unlink()
                    removed += 1
        plan.unlink()
    if base.is_dir():
        for folder in sorted((d for d in base.rglob("*") if d.is_dir()), reverse=True):
            for p in folder.glob(f".*{PART_SUFFIX}"):  # half copy of a killed export
                p.unlink()
            if not any(folder.iterdir()):
                folder.rmdir()
        if not any(base.iterdir()):
            base.rmdir()
    return removed


def moved_files(out_dir: str | Path) -> dict[str, Path]:
    """Image id -> where ``--export move`` put it, for the moves of ``out_dir/export.csv``.

    Lets the report find an image that is no longer at its source path. Empty when the last
    export was not a move.
    """
    out_dir = Path(out_dir)
    try:
        with open(out_dir / PLAN, encoding="utf-8", errors="surrogateescape", newline="") as f:
            return {row["id"]: out_dir / row["exported"] for row in csv.DictReader(f)
                    if row.get("mode") == "move" and row.get("exported")}
    except (OSError, csv.Error, KeyError):
        return {}


def _duplicate(src: Path, dst: Path) -> bool:
    """Whether ``dst`` is a second copy of ``src`` (a move or undo across file systems killed
    between its copy and its delete): same bytes, both regular files."""
    try:
        return (src.is_file() and dst.is_file() and not src.is_symlink() and not dst.is_symlink()
                and filecmp.cmp(src, dst, shallow=False))
    except OSError:
        return False


def undo(out_dir: str | Path) -> dict[str, int]:
    """Put every file of a journaled ``--export move`` back where it was.

    Safe to run after a crash mid-move and to run twice: each journal entry is checked against
    the file system (moved back only when the destination exists and the original path is free).
    A file that cannot be moved back stays where it is and is named in the error; so does one
    whose original path now holds another file (a conflict: nothing is overwritten).

    Returns
    -------
    dict
        ``{"restored": n, "already_in_place": m, "missing": x}``; the journal is renamed to
        ``export-journal.undone`` once nothing is missing.

    Raises
    ------
    RunDirError
        No journal in ``out_dir``.
    ImgclustError
        Some files could not be moved back, or their original path is taken (the journal is
        kept, so undo can be run again once that is resolved).
    """
    out_dir = Path(out_dir)
    journal = out_dir / JOURNAL
    if not journal.exists():
        raise RunDirError(f"{out_dir}: no move journal ({JOURNAL}); nothing to undo")
    restored = in_place = missing = 0
    failed: list[str] = []
    conflicts: list[str] = []
    entries = []
    with open(journal, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    raise RunDirError(f"{journal}: line {n} is damaged; no file was moved back") from None
    for e in entries:
        src, dst = Path(e["src"]), Path(e["dst"])
        if e.get("rel") and not os.path.lexists(dst):  # the run folder was moved since
            alt = out_dir / e["rel"]
            if _inside(alt, out_dir / "clusters"):
                dst = alt
        try:
            if "link" in e:
                r = _undo_link(src, dst, e["link"])
            else:
                r = _undo_file(src, dst)
        except OSError as exc:
            failed.append(f"{dst} -> {src}: {exc.strerror or exc}")
            continue
        if r == "restored":
            restored += 1
        elif r == "in place":
            in_place += 1
        elif r == "missing":
            missing += 1
        else:
            conflicts.append(f"{src} (the moved file stays at {dst})")
    if failed or conflicts:
        parts = []
        if conflicts:
            parts.append(f"{len(conflicts)} not moved back because another file now holds the "
                         f"original path: {'; '.join(conflicts[:5])}"
                         + (f"; … {len(conflicts) - 5} more" if len(conflicts) > 5 else ""))
        if failed:
            parts.append(f"could not move back {len(failed)}: {'; '.join(failed[:5])}")
        raise ImgclustError(f"undo restored {restored} files; {'; '.join(parts)}; nothing was "
                            f"overwritten; fix the cause (move the new files away) and run "
                            f"'imgclust undo {out_dir}' again")
    if missing == 0:
        journal.rename(journal.with_suffix(".undone"))
    return {"restored": restored, "already_in_place": in_place, "missing": missing}


def _undo_file(src: Path, dst: Path) -> str:
    """Put one moved file back: "restored", "in place", "missing" or "conflict"."""
    _drop_part(src)  # half copy of a crashed cross-device undo
    if os.path.lexists(src):
        if not os.path.lexists(dst):
            _drop_part(dst)  # half copy of a crashed cross-device move
            return "in place"
        if _duplicate(src, dst):  # a crashed cross-device move or undo: drop the second copy
            dst.unlink()
            return "in place"
        return "conflict"
    if not os.path.lexists(dst):
        return "missing"
    src.parent.mkdir(parents=True, exist_ok=True)
    _move(dst, src)
    return "restored"


def _undo_link(src: Path, dst: Path, text: str) -> str:
    """Put one moved symlink back, from the journal's copy of its content."""
    ours = os.path.islink(dst) and os.readlink(dst) == _link_target(src, text)
    if os.path.lexists(src):
        if os.path.islink(src) and os.readlink(src) == text:
            if ours:  # killed between making the new link and removing the old one
                dst.unlink()
            return "in place"
        return "conflict" if os.path.lexists(dst) else "in place"
    src.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(text, src)
    if ours:
        dst.unlink()
    return "restored"
