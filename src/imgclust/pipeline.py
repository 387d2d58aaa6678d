"""Compatibility: the pipeline now lives in :mod:`imgclust.run` (stages, run directory, saved
model, assign, recluster). Names are re-exported here for code written against imgclust 0.1."""
from __future__ import annotations

from imgclust.run.clustering import cluster_features, score  # noqa: F401
from imgclust.run.extract import extract_features, feature_cache_key, validate  # noqa: F401
from imgclust.run.model import versions  # noqa: F401
from imgclust.run.pipeline import (CompareResult, compare, run, run_manifest,  # noqa: F401
                                   write_run)
from imgclust.run.result import Result, load  # noqa: F401
from imgclust.run.rundir import (CACHE, CLUSTERS, FEATURES, JOURNAL, RUN_FORMAT,  # noqa: F401
                                 RUN_JSON, SUMMARY, RunDir)
