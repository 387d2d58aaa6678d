"""Fixtures shared by the feature tests."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tmp cache folder for the session, also set as $IMGCLUST_CACHE_DIR for run(): every
    CNN test file shares it, so each ONNX graph is exported once per session."""
    from imgclust.features import cnn

    folder = tmp_path_factory.mktemp("imgclust-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv(cnn.CACHE_ENV, str(folder))
    yield folder
    mp.undo()
