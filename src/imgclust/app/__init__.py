"""The local labelling web app of a run directory (``imgclust serve DIR``).

Imports FastAPI: imported by the ``serve`` command and the tests, never by the core.
"""
from imgclust.app.web import create_app

__all__ = ["create_app"]
