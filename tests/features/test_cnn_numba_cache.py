"""UMAP's numba code is cached between processes (issue 12): ``import_umap`` points numba's
cache at imgclust's cache folder unless the user set ``NUMBA_CACHE_DIR``, and makes umap's
jitted functions cacheable (file in tests/features/test_cnn* by ownership; the code is in
features/reduce.py)."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("umap") is None, reason="needs umap")

PROBE = """
import os
from imgclust.features.reduce import import_umap
umap = import_umap()
import numba
print(os.environ.get("NUMBA_CACHE_DIR"))
print(numba.config.CACHE_DIR)
print(type(umap.plus_one._cache).__name__, umap.plus_one(1))
f = numba.njit(lambda x: x)  # after the import numba's own default is back
print(type(f._cache).__name__)
"""

#: a stand-in for umap-learn (whose first import compiles for minutes on a loaded machine):
#: a module-level @numba.njit function without cache=True, as most of umap's are
FAKE_UMAP = """
import numba


@numba.njit
def plus_one(x):
    return x + 1
"""


def _probe(tmp_path, env: dict[str, str]) -> list[str]:
    fake = tmp_path / "fake" / "umap"
    fake.mkdir(parents=True, exist_ok=True)
    (fake / "__init__.py").write_text(FAKE_UMAP)
    path = os.pathsep.join([str(tmp_path / "fake"), os.environ.get("PYTHONPATH", "")])
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": path, **env}, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()


def test_numba_cache_in_imgclust_cache_folder(tmp_path):
    lines = _probe(tmp_path, {"IMGCLUST_CACHE_DIR": str(tmp_path / "cache"),
                              "NUMBA_CACHE_DIR": ""})
    want = str(tmp_path / "cache" / "numba")
    assert lines[0] == want and lines[1] == want
    assert lines[2] == "FunctionCache 2"  # cached on disk...
    assert any((tmp_path / "cache" / "numba").rglob("*.nbi"))  # ...there
    assert lines[3] == "NullCache"  # numba.njit is numba's own again


def test_users_numba_cache_dir_is_kept(tmp_path):
    mine = str(tmp_path / "mine")
    lines = _probe(tmp_path, {"IMGCLUST_CACHE_DIR": str(tmp_path / "cache"),
                              "NUMBA_CACHE_DIR": mine})
    assert lines[0] == mine and lines[1] == mine
    assert not (tmp_path / "cache" / "numba").exists()
