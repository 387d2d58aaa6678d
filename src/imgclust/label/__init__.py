"""Labelling a run: the label store, propagation, active learning, training and export.

Light at import time: scikit-learn is imported by the functions that need it.
"""
from imgclust.label.store import DB_NAME, GIVEN, SOURCES, LabelError, LabelStore

__all__ = ["LabelStore", "LabelError", "DB_NAME", "GIVEN", "SOURCES"]
