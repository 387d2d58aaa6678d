"""Output folders of the commands that write beside no run directory (segment, bench, generate):
a folder is written only when it is new, empty, or listed by the marker file that the same
command wrote there; only listed files are ever replaced or removed. Ground floor: any room
may use it."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from imgclust._version import __version__
from imgclust.errors import RunDirError
from imgclust.io import atomic_write_bytes, atomic_write_json, atomic_write_text


def claim_out_dir(out: str | Path, marker: str, command: str, names: Sequence[str]
                  ) -> list[str]:
    """Check that ``out`` may receive ``names`` and return the files an earlier call wrote.

    ``out`` may be missing, empty, or a folder whose ``marker`` (a JSON file written by the
    same ``command``) lists what that command wrote there; then only listed files may be
    replaced, and a listed file that is not written again may be removed. Anything else is
    refused before a single file is written.

    Parameters
    ----------
    out : str or Path
    marker : str
        File name of the marker, e.g. ``"segment.json"``.
    command : str
        Recorded in the marker's ``written_by``, e.g. ``"imgclust segment"``.
    names : sequence of str
        File names (directly in ``out``) about to be written.

    Returns
    -------
    list of str
        The files the earlier marker listed (empty for a new folder).

    Raises
    ------
    RunDirError
        ``out`` is a file, or is not empty and was not written by ``command``, or a file about
        to be written exists and was not written by it.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"{out} is a file, not a folder: refusing to write there")
    if not out.exists() or not any(out.iterdir()):
        return []
    mpath = out / marker
    try:
        data = json.loads(mpath.read_text(encoding="utf-8"))
        ok = isinstance(data, dict) and data.get("written_by") == command
        listed = [str(n) for n in data.get("files", [])] if ok else []
    except (OSError, ValueError, TypeError, AttributeError):
        ok, listed = False, []
    if not ok:
        raise RunDirError(f"{out} is not empty and was not written by {command} (no {marker} "
                          "of it there): refusing to write into it; choose a new or empty folder")
    for name in names:
        p = out / name
        if os.path.lexists(p) and (name not in listed or p.is_dir() or p.is_symlink()):
            raise RunDirError(f"{p} exists and was not written by {command}: refusing to "
                              "replace it; choose a new or empty folder")
    return [n for n in listed if n != marker and "/" not in n and n not in (".", "..")]


def write_owned(out: str | Path, marker: str, command: str, files: dict[str, bytes | str],
                info: dict[str, Any] | None = None) -> list[Path]:
    """Write ``files`` (name -> content) into ``out`` under :func:`claim_out_dir`'s rule.

    The marker lists every file before any is written (so a killed call leaves nothing
    unlisted); files listed by an earlier call and not written again are removed; the marker
    is then rewritten with this call's files and ``info``.

    Returns
    -------
    list of Path
        The files written, marker last.
    """
    out = Path(out)
    earlier = claim_out_dir(out, marker, command, list(files))
    out.mkdir(parents=True, exist_ok=True)
    head = {"written_by": command, "version": __version__}
    atomic_write_json(out / marker, {**head, "files": sorted(set(earlier) | set(files))})
    written = []
    for name, content in files.items():
        if isinstance(content, str):
            atomic_write_text(out / name, content)
        else:
            atomic_write_bytes(out / name, content)
        written.append(out / name)
    for name in set(earlier) - set(files):
        p = out / name
        if p.is_file() and not p.is_symlink():
            p.unlink()
    atomic_write_json(out / marker, {**head, "files": sorted(files), **(info or {})})
    return [*written, out / marker]
