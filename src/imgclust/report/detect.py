"""What ``imgclust outliers`` and ``imgclust duplicates`` found, in a run's report.

Run on a run directory, each command writes a small JSON file into it (``outliers.json``,
``duplicates.json``: the top-ranked images or the groups, each image with its thumbnail
embedded, and where the command's own ``--out`` report is), recorded in the run's manifest
first (:meth:`imgclust.run.rundir.RunDir.write_json`), and rebuilds ``report.html`` when the run
has one. :func:`detect_context` reads those files for the report's "Outliers" and
"Duplicates" sections; a file the manifest does not list is never read, nor written.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

OUTLIERS_JSON = "outliers.json"
DUPLICATES_JSON = "duplicates.json"
#: images shown in the run report's outlier gallery (all are in the command's own report)
REPORT_OUTLIERS = 48
#: groups shown in the run report (all are in the command's own report)
REPORT_GROUPS = 30
#: images shown per group in the run report
REPORT_MEMBERS = 12


def _link(run_dir: Path, target: Path) -> str:
    """``target`` as the report links it: relative to the run directory where possible."""
    try:
        return Path(os.path.relpath(Path(target).resolve(), Path(run_dir).resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return Path(target).resolve().as_uri()


def _run_dir(run_dir: str | Path, name: str) -> Any:
    """The run's RunDir when ``name`` may be written there: the run has a manifest, and no file
    of that name exists that the manifest does not list (a user's file is left alone)."""
    from imgclust.run.rundir import RunDir

    rd = RunDir(run_dir)
    if not rd.holds_run():
        log.warning("%s: no run.json manifest; %s not written", run_dir, name)
        return None
    if (rd.path / name).exists() and name not in rd.written():
        log.warning("%s: %s exists and was not written by imgclust; left alone", run_dir, name)
        return None
    return rd


def record_outliers(run_dir: str | Path, rep: Any, src: Any, html_path: Path) -> Path | None:
    """Write ``run_dir/outliers.json`` (through the run's manifest) from an OutlierReport."""
    from imgclust.detect.output import read_thumb_uri

    rd = _run_dir(run_dir, OUTLIERS_JSON)
    if rd is None:
        return None
    r = rep.result
    top = [int(i) for i in r.ranking() if r.flagged[i]][:REPORT_OUTLIERS]
    items = [{"rank": k, "id": rep.ids[i], "score": round(float(r.score[i]), 3),
              "reason": r.reason[i], "thumb": read_thumb_uri(src, rep.ids[i])}
             for k, i in enumerate(top, start=1)]
    payload = {"n": len(rep.ids), "flagged": int(r.flagged.sum()),
               "contamination": r.contamination, "methods": list(r.methods),
               "report": _link(Path(run_dir), html_path), "items": items}
    return rd.write_json(OUTLIERS_JSON, payload)


def record_duplicates(run_dir: str | Path, res: Any, src: Any, html_path: Path
                      ) -> Path | None:
    """Write ``run_dir/duplicates.json`` (through the run's manifest) from a DuplicateResult."""
    from imgclust.detect.output import read_thumb_uri

    rd = _run_dir(run_dir, DUPLICATES_JSON)
    if rd is None:
        return None
    groups = res.groups()
    shown = []
    for members in groups[:REPORT_GROUPS]:
        shown.append({"size": len(members), "members": [
            {"id": res.ids[m], "kept": bool(res.kept[m]), "kind": res.kind[m],
             "distance": int(res.distance[m]), "thumb": read_thumb_uri(src, res.ids[m])}
            for m in members[:REPORT_MEMBERS]]})
    payload = {"n": len(res.ids), "groups": len(groups), "dropped": len(res.dropped()),
               "report": _link(Path(run_dir), html_path), "shown": shown}
    return rd.write_json(DUPLICATES_JSON, payload)


def rebuild_if_present(run_dir: str | Path) -> bool:
    """Rebuild ``report.html`` when the run has one (so the new section shows); whether it did."""
    from imgclust.report.build import REPORT, build_report

    if (Path(run_dir) / REPORT).is_file():
        build_report(run_dir)
        return True
    return False


def detect_context(run_dir: str | Path) -> dict[str, Any]:
    """The report's ``detect`` context: ``outliers`` and ``duplicates`` (each ``None`` when the
    run holds no such file listed in its manifest, or it cannot be read)."""
    from imgclust.run.rundir import RunDir

    rd = RunDir(run_dir)
    written = set(rd.written()) if rd.holds_run() else set()
    out: dict[str, Any] = {"outliers": None, "duplicates": None}
    for key, name in (("outliers", OUTLIERS_JSON), ("duplicates", DUPLICATES_JSON)):
        path = Path(run_dir) / name
        if name not in written or not path.is_file():
            continue
        try:
            out[key] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return out
