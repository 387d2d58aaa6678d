"""Acting on results: per-cluster folders (copy, link or journaled move) and undo."""
from imgclust.export.folders import JOURNAL, PLAN, export_clusters, remove_export, undo

__all__ = ["export_clusters", "undo", "remove_export", "JOURNAL", "PLAN"]
