"""Exporting the labels: a CSV, or one folder per label with copies of the images.

``csv``
    ``id,path,label,source,confidence`` (``path`` empty for images held in an array).
``folders``
    ``OUT/<label>/<file>``: byte copies under their own names (array images as PNG). A label
    changes only where a file system cannot hold it (``/``, a leading dot, NUL).
``imagefolder``
    torchvision's ``ImageFolder`` layout ``OUT/<class>/<file>``: class names made portable
    (no ``<>:"/\\|?*``, no reserved Windows names, no trailing dot or space, distinct without
    regard to case), and every file in a format ``ImageFolder`` reads (others, e.g. GIF,
    converted to PNG).

Both folder layouts end with ``OUT/labels.csv`` (``id,file,label,source,confidence``): which
label each folder holds. Nothing is ever overwritten: ``OUT`` must be new or empty, each copy
is written under a temporary ``.NAME.part`` and renamed when complete.

:func:`import_labels` reads the other way: a CSV of ``id,label`` into the label store.
"""
from __future__ import annotations

import csv
import errno
import os
import unicodedata
from pathlib import Path
from typing import Any, Sequence

from imgclust.errors import ConfigError, DecodeError
from imgclust.io import atomic_write_csv, fsync_dir, kill_point

FORMATS = ("csv", "folders", "imagefolder")
#: extensions torchvision's ImageFolder loads (torchvision.datasets.folder.IMG_EXTENSIONS)
IMAGEFOLDER_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff",
                          ".webp")
LABELS_CSV = "labels.csv"
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                     *(f"LPT{i}" for i in range(1, 10))}
_MAX_NAME_BYTES = 200


def safe_name(label: str, portable: bool = False) -> str:
    """A folder name for ``label``.

    Parameters
    ----------
    label : str
    portable : bool
        Also valid on Windows and macOS (``imagefolder``): ``<>:"/\\|?*`` and control
        characters become ``_``, no trailing dot or space, reserved device names get a ``_``.

    Examples
    --------
    >>> safe_name("cats/dogs"), safe_name(".hidden"), safe_name("a:b?", portable=True)
    ('cats_dogs', '_hidden', 'a_b_')
    """
    name = unicodedata.normalize("NFC", label)
    bad = set('<>:"/\\|?*') if portable else {"/", "\\"}
    name = "".join("_" if ch in bad or ord(ch) < 32 or ord(ch) == 127 else ch for ch in name)
    name = name.strip()
    if portable:
        name = name.rstrip(". ")
        if name.split(".")[0].upper() in _WINDOWS_RESERVED:
            name = "_" + name
    if name.startswith("."):  # a hidden folder: skipped by most tools, imgclust's scan too
        name = "_" + name[1:]
    while len(name.encode("utf-8")) > _MAX_NAME_BYTES:
        name = name[:-1]
    return name or "_"


def folder_names(labels: Sequence[str], portable: bool) -> dict[str, str]:
    """label -> a distinct folder name (a clash, also one of case alone, gets ``_2``, ``_3``…)."""
    out: dict[str, str] = {}
    taken: set[str] = {LABELS_CSV.casefold()}
    for lab in sorted(set(labels)):
        base = safe_name(lab, portable)
        name, n = base, 1
        while name.casefold() in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name.casefold())
        out[lab] = name
    return out


def out_of_space(exc: OSError) -> bool:
    """A full disk or quota: no other file would fare better, so the export stops."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _check_out(out: Path, fmt: str) -> None:
    from imgclust.label.store import LabelError

    if fmt == "csv":
        if out.exists() or out.is_symlink():
            raise LabelError(f"{out}: exists; imgclust does not overwrite it (choose a new name)")
        if not out.parent.is_dir():
            raise LabelError(f"{out.parent}: no such folder")
        return
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise LabelError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise LabelError(f"{out}: not empty; labels are exported only into a new or empty "
                         "folder (nothing there is overwritten)")


def _write_copy(src_path: str, dst: Path) -> None:
    # the export room's copy: a temporary name that fits NAME_MAX and never takes a user's file
    from imgclust.export.folders import _copy_safely

    _copy_safely(Path(src_path), dst)


def _write_png(img: Any, dst: Path) -> None:
    from imgclust.export.folders import save_png_safely

    save_png_safely(img, dst)


def export_labels(run_dir: str | Path, out: str | Path, format: str = "csv",  # noqa: A002
                  min_confidence: float | None = None, sources: Sequence[str] = ("human",),
                  progress: bool = False) -> dict[str, Any]:
    """Write the labels of a run as a CSV file or as one folder of copies per label.

    Parameters
    ----------
    run_dir : str or Path
        A run directory with a label store.
    out : str or Path
        The CSV file (``csv``) or the folder (``folders``, ``imagefolder``) to write; must not
        exist yet (a folder may exist empty).
    format : {"csv", "folders", "imagefolder"}
    min_confidence : float, optional
        Leave out labels with a lower confidence (a label without one, a person's, counts
        as 1).
    sources : sequence of str
        Which labels to export (``human``, ``import``, ``propagated``, ``model``).
    progress : bool

    Returns
    -------
    dict
        ``format``, ``out``, ``labels`` (images exported), ``by_label``, ``files`` (copies
        written), ``failed`` (list of (id, reason) for files that could not be copied).
    """
    from imgclust.label.store import LabelError, LabelStore, _check_confidence, _check_source
    from imgclust.progress import progress_bar
    from imgclust.sources import FolderSource, open_source
    from imgclust.sources.decode import decode_image

    if format not in FORMATS:
        raise ConfigError(f"export format {format!r}; valid: {', '.join(FORMATS)}")
    for s in sources:
        _check_source(s)
    min_confidence = _check_confidence(min_confidence)
    out = Path(out)
    store = LabelStore(run_dir)
    skip = store.not_of_interest()
    chosen = [(i, lab, src, conf) for i, (lab, src, conf) in store.current_labels(sources).items()
              if i not in skip and (min_confidence is None
                                    or (1.0 if conf is None else conf) >= min_confidence)]
    if not chosen:
        cond = f" with confidence >= {min_confidence}" if min_confidence is not None else ""
        raise LabelError(f"{store.run_dir}: no labels from {', '.join(sources)}{cond} to export")
    chosen.sort(key=lambda r: store.index[r[0]])  # run order
    _check_out(out, format)
    source = open_source(store.run.summary["source"])
    folder_src = isinstance(source, FolderSource)
    by_label: dict[str, int] = {}
    for _, lab, _, _ in chosen:
        by_label[lab] = by_label.get(lab, 0) + 1
    res: dict[str, Any] = {"format": format, "out": str(out), "labels": len(chosen),
                           "by_label": dict(sorted(by_label.items())), "files": 0, "failed": []}
    if format == "csv":
        atomic_write_csv(out, ["id", "path", "label", "source", "confidence"], (
            [i, str(source.root / i) if folder_src else "", lab, src,
             "" if conf is None else conf] for i, lab, src, conf in chosen))
        return res

    from imgclust.export.folders import free_name

    portable = format == "imagefolder"
    names = folder_names(list(by_label), portable)
    out.mkdir(parents=True, exist_ok=True)
    taken: dict[str, set[str]] = {}
    rows = []
    bar = progress_bar(progress)
    for n, (i, lab, src, conf) in enumerate(bar(chosen, desc="export", unit="img")):
        folder = out / names[lab]
        folder.mkdir(exist_ok=True)
        if folder_src:
            name = os.path.basename(i)
            convert = portable and os.path.splitext(name)[1].lower() not in IMAGEFOLDER_EXTENSIONS
            if convert:
                name = os.path.splitext(name)[0] + ".png"
        else:
            name, convert = f"{int(i):06d}.png" if i.isdigit() else f"{safe_name(i)}.png", True
        dst = free_name(folder, name, taken.setdefault(lab, set()))
        try:
            if folder_src and not convert:
                _write_copy(str(source.root / i), dst)
            elif folder_src:  # full size: the run's own decoding shrinks large images
                _write_png(decode_image(str(source.root / i), i, max_side=None)[1], dst)
            else:
                _write_png(source.read(i)[1], dst)
        except DecodeError as exc:  # gone or changed since the run: the others still go
            res["failed"].append((i, exc.reason))
            continue
        except OSError as exc:
            if out_of_space(exc):
                raise
            res["failed"].append((i, exc.strerror or str(exc)))
            continue
        kill_point(f"label-export:{n}")
        res["files"] += 1
        rows.append([i, str(dst.relative_to(out)), lab, src, "" if conf is None else conf])
    for d in {out / v for v in names.values()} | {out}:
        if d.is_dir():
            fsync_dir(d)
    atomic_write_csv(out / LABELS_CSV, ["id", "file", "label", "source", "confidence"], rows)
    return res


def import_labels(run_dir: str | Path, path: str | Path, source: str = "human") -> dict[str, Any]:
    """Record the labels of a CSV file (columns ``id`` and ``label``) as one batch.

    Other columns are ignored; a later row for the same id wins. Nothing is recorded when any
    id is not an image of the run, or any label is empty.

    Returns
    -------
    dict
        ``batch``, ``labels`` (rows recorded), ``by_label``.
    """
    from imgclust.label.store import LabelError, LabelStore, check_label

    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            if "id" not in header or "label" not in header:
                raise LabelError(f"{path}: needs a header with the columns id and label, "
                                 f"found {header or 'an empty file'}")
            rows = [(r["id"], r["label"]) for r in reader]
    except UnicodeDecodeError as exc:
        raise LabelError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise LabelError(f"{path}: not a readable CSV file ({exc})") from None
    except OSError as exc:
        raise LabelError(f"{path}: cannot be read ({exc.strerror})") from None
    if not rows:
        raise LabelError(f"{path}: no labels (only a header)")
    store = LabelStore(run_dir)
    unknown = [i for i, _ in rows if i not in store.index]
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:3]) + (" …" if len(unknown) > 3 else "")
        raise LabelError(f"{path}: {len(unknown)} of {len(rows)} ids are not images of the run "
                         f"in {store.run_dir} ({shown}); nothing imported")
    labels: dict[str, str] = {}
    for n, (i, lab) in enumerate(rows, start=2):
        if lab is None or not lab.strip():
            raise LabelError(f"{path}: line {n} ({i!r}) has no label; nothing imported")
        try:
            labels[i] = check_label(lab.strip())
        except ConfigError as exc:
            raise LabelError(f"{path}: line {n}: {exc}; nothing imported") from None
    batch = store.label_each(labels, source, op_name="import")
    by_label: dict[str, int] = {}
    for lab in labels.values():
        by_label[lab] = by_label.get(lab, 0) + 1
    return {"batch": batch, "labels": len(labels), "by_label": dict(sorted(by_label.items()))}
