"""Per-cluster folders: ``DIR/clusters/cluster_00/…``.

Files are sacred: no mode ever overwrites (a clash gets a ``_1``, ``_2``… suffix, and each
write re-checks that its destination is free); ``copy`` goes through a temporary ``.part`` name,
so a full disk leaves no half file; ``move`` first writes a journal of every planned move
(atomically, fsynced), so ``undo`` can put each file back, also after a crash mid-move.
"""
from __future__ import annotations

import csv
import errno
import filecmp
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


def cluster_folder_name(c: int) -> str:
    return "noise" if c < 0 else f"cluster_{c:02d}"


def free_name(folder: Path, name: str, taken: set[str]) -> Path:
    """``folder/name``, or ``stem_1.ext``, ``stem_2.ext``… if that exists or is planned."""
    stem, suffix = os.path.splitext(name)
    cand, i = name, 0
    while cand in taken or (folder / cand).exists() or (folder / cand).is_symlink():
        i += 1
        cand = f"{stem}_{i}{suffix}"
    taken.add(cand)
    return folder / cand


def _refuse_existing(dst: Path) -> None:
    if dst.exists() or dst.is_symlink():
        raise FileExistsError(errno.EEXIST, "destination exists; not overwritten", str(dst))


def part_name(dst: Path) -> Path:
    """The temporary name a copy is written under before it is renamed to ``dst``."""
    return dst.with_name(f".{dst.name}.part")


def _copy_safely(src: Path, dst: Path) -> None:
    """Copy to ``.dst.part`` then rename: a full disk or a crash never leaves a half ``dst``."""
    _refuse_existing(dst)
    tmp = part_name(dst)
    try:
        shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _move(src: Path, dst: Path) -> None:
    _refuse_existing(dst)
    try:
        os.rename(src, dst)  # same file system: atomic
    except OSError as exc:
        if exc.errno != errno.EXDEV:  # other file system -> copy, then remove the original
            raise
        _copy_safely(src, dst)
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
    plan: list[tuple[str | None, Path, str]] = []  # (source path, destination, image id)
    taken: dict[int, set[str]] = {}
    for image_id, c in zip(result.ids, result.labels_):
        folder = base / cluster_folder_name(int(c))
        rec = recs[image_id]
        name = os.path.basename(rec.path) if rec.path else f"{int(image_id):06d}.png"
        plan.append((rec.path, free_name(folder, name, taken.setdefault(int(c), set())), image_id))
    if mode == "move" and any(p is None for p, _, _ in plan):
        raise ConfigError("--export move needs files; this source is an array (use copy)")
    for d in {dst.parent for _, dst, _ in plan}:
        d.mkdir(parents=True, exist_ok=True)
    # the plan first: a resumed or replaced run removes exactly these files (remove_export)
    atomic_write_csv(out_dir / PLAN, ["id", "cluster", "mode", "source", "exported"],
                     ((i, int(c), mode, p or "", str(dst.relative_to(out_dir)))
                      for (p, dst, i), c in zip(plan, result.labels_)))
    if mode == "move":
        # the whole plan is on disk (atomically, fsynced) before the first file moves
        lines = "".join(json.dumps({"src": str(Path(p).resolve()), "dst": str(dst.resolve())},
                                   ensure_ascii=True) + "\n" for p, dst, _ in plan)
        atomic_write_text(journal, lines)
        fsync_dir(out_dir)
    from imgclust.progress import progress_bar

    bar = progress_bar(progress)
    done = 0
    try:
        for src, dst, image_id in bar(plan, desc=f"export ({mode})", unit="file"):
            if src is None:
                _, img = result.source.read(image_id)
                _refuse_existing(dst)
                tmp = part_name(dst)
                try:
                    img.save(tmp, format="PNG")
                    os.replace(tmp, dst)
                finally:
                    tmp.unlink(missing_ok=True)
            elif mode == "copy":
                _copy_safely(Path(src), dst)
            elif mode == "link":
                os.symlink(Path(src).resolve(), dst)
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


def remove_export(out_dir: str | Path) -> int:
    """Remove the files an earlier export wrote (per ``export.csv``), then empty cluster folders.

    Used when a run is resumed or replaced. Only files that still are what export wrote are
    removed (a copy identical to its original, a link to it, a rendered PNG); files the user
    added or changed, and moved originals, stay.

    Returns
    -------
    int
        Number of files removed.
    """
    out_dir = Path(out_dir)
    plan = out_dir / PLAN
    removed = 0
    if plan.exists():
        with open(plan, encoding="utf-8", errors="surrogateescape", newline="") as f:
            for row in csv.DictReader(f):
                dst = out_dir / row["exported"]
                part_name(dst).unlink(missing_ok=True)
                if (dst.exists() or dst.is_symlink()) and _is_ours(row["source"], dst, row["mode"]):
                    dst.unlink()
                    removed += 1
        plan.unlink()
    base = out_dir / "clusters"
    if base.is_dir():
        for folder in sorted((d for d in base.rglob("*") if d.is_dir()), reverse=True):
            for p in folder.glob(".*.part"):  # half copy of a killed export
                p.unlink()
            if not any(folder.iterdir()):
                folder.rmdir()
        if not any(base.iterdir()):
            base.rmdir()
    return removed


def undo(out_dir: str | Path) -> dict[str, int]:
    """Put every file of a journaled ``--export move`` back where it was.

    Safe to run after a crash mid-move and to run twice: each journal entry is checked against
    the file system (moved back only when the destination exists and the original path is free).
    A file that cannot be moved back stays where it is and is named in the error.

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
        Some files could not be moved back (the journal is kept, so undo can be run again).
    """
    out_dir = Path(out_dir)
    journal = out_dir / JOURNAL
    if not journal.exists():
        raise RunDirError(f"{out_dir}: no move journal ({JOURNAL}); nothing to undo")
    restored = in_place = missing = 0
    failed: list[str] = []
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
        part_name(src).unlink(missing_ok=True)  # half copy of a crashed cross-device undo
        if src.exists():
            in_place += 1
            part_name(dst).unlink(missing_ok=True)  # half copy of a crashed cross-device move
        elif dst.exists():
            try:
                src.parent.mkdir(parents=True, exist_ok=True)
                _move(dst, src)
                restored += 1
            except OSError as exc:
                failed.append(f"{dst} -> {src}: {exc.strerror or exc}")
        else:
            missing += 1
    if failed:
        raise ImgclustError(f"undo restored {restored} files but could not move back "
                            f"{len(failed)}: {'; '.join(failed[:5])}; fix the cause and run "
                            f"'imgclust undo {out_dir}' again")
    if missing == 0:
        journal.rename(journal.with_suffix(".undone"))
    return {"restored": restored, "already_in_place": in_place, "missing": missing}
