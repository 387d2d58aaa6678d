"""Acting on results: per-cluster folders (copy, link or journaled move) and undo."""
from imgclust.export.folders import (JOURNAL, PLAN, export_clusters, moved_files, remove_export,
                                     undo)

__all__ = ["export_clusters", "undo", "remove_export", "moved_files", "JOURNAL", "PLAN"]
