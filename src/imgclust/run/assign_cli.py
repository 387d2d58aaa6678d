"""``imgclust assign DIR NEW --out OUT``: new images to a run's clusters, written as a CSV."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from imgclust.errors import RunDirError
from imgclust.io import atomic_write_csv

ASSIGNMENTS = "assignments.csv"


def assign_to_folder(run_dir: str | Path, images: str, out: str | Path, batch_size: int = 256,
                     progress: bool = False) -> dict[str, Any]:
    """Assign the images of a source to a run's clusters and write ``OUT/assignments.csv``.

    Columns: ``id, path, cluster, distance, unknown, reason`` (cluster numbered as the run's
    clusters.csv; -1 with ``unknown=1`` for an image unlike every cluster). ``OUT`` must be new
    or empty, or hold only an earlier ``assignments.csv`` (replaced).

    Returns
    -------
    dict
        ``n``, ``known``, ``unknown``, ``skipped`` and the ``file`` written.
    """
    from imgclust.run.result import load
    from imgclust.sources import open_source

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(p.name != ASSIGNMENTS for p in out.iterdir()):
        raise RunDirError(f"{out}: not empty; choose a new or empty --out")
    res = load(run_dir)  # checked before the first new image is read
    src = open_source(images)
    recs, a, failures = res.predict_source(src, batch_size=batch_size, progress=progress)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"{out}: cannot create: {exc.strerror or exc}") from None
    rows = ([r.id, r.path or "", int(lab), f"{d:.6g}", int(u), why]
            for r, lab, d, u, why in zip(recs, a.labels, a.distance, a.unknown, a.reason))
    atomic_write_csv(out / ASSIGNMENTS, ["id", "path", "cluster", "distance", "unknown", "reason"],
                     rows)
    n_unknown = int(a.unknown.sum())
    return {"n": len(recs), "known": len(recs) - n_unknown, "unknown": n_unknown,
            "skipped": len(failures), "file": out / ASSIGNMENTS}
