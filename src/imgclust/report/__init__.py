"""The HTML report of a finished run: reads the run directory, never imported by the core.

``build_report(run_dir)`` writes ``run_dir/report.html`` with ``thumbs/`` and ``plotly.min.js``
beside it; the page opens offline in any browser.
"""
from __future__ import annotations

from imgclust.report.build import REPORT, build_report, render

__all__ = ["build_report", "render", "REPORT"]
