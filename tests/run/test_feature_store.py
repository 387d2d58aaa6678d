"""The feature store and the catalogue on their own (issue 15)."""
from __future__ import annotations

import numpy as np
import pytest

from imgclust.run.catalog import Catalog, FileRow, content_hash
from imgclust.run.store import FeatureStore


def test_store_appends_and_takes_rows_in_order(tmp_path):
    rng = np.random.default_rng(0)
    A, B = rng.random((5, 3), dtype=np.float32), rng.random((2, 3), dtype=np.float32)
    s = FeatureStore(tmp_path / "s.f32")
    assert s.append(A) == 0 and s.append(B) == 5
    np.testing.assert_array_equal(s.matrix(), np.vstack([A, B]))
    np.testing.assert_array_equal(s.take(np.array([6, 0, 2]), chunk=2), np.vstack([B[1], A[0], A[2]]))
    with pytest.raises(ValueError, match="width 4; the store holds 3"):
        s.append(np.zeros((1, 4)))
    s.close()


def test_store_cuts_uncommitted_rows_and_refuses_lost_ones(tmp_path):
    s = FeatureStore(tmp_path / "s.f32")
    s.append(np.ones((4, 2)))
    s.close()
    s = FeatureStore(tmp_path / "s.f32", n_rows=3, dim=2)  # row 4 was never committed
    assert (tmp_path / "s.f32").stat().st_size == 3 * 2 * 4 and s.matrix().shape == (3, 2)
    s.close()
    with pytest.raises(OSError, match="refers to 80"):
        FeatureStore(tmp_path / "s.f32", n_rows=10, dim=2)


def test_catalog_commit_lookup_drop(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"abc")
    h = content_hash(tmp_path / "a.bin")
    cat = Catalog(tmp_path / "c.sqlite")
    assert cat.get_meta("n_rows") is None and cat.n_rows() == 0
    odd = "b\udcff.png"  # an undecodable file name
    cat.commit_batch([FileRow("a.png", "/x/a.png", 3, 10, h, "ok", None, 4, 5, "RGB"),
                      FileRow(odd, "/x/b", 1, 2, None, "failed", "empty file", None, None, None)],
                     {h: 0}, n_rows=1, dim=7)
    assert cat.lookup("a.png") == (3, 10, h, "ok", None, 4, 5, "RGB", 0)
    assert cat.lookup(odd)[3:5] == ("failed", "empty file")
    cat.close()
    cat = Catalog(tmp_path / "c.sqlite")  # reopened: everything was committed
    assert cat.n_rows() == 1 and cat.get_meta("dim") == "7" and cat.row_of(h) == 0
    assert {r.id for r in cat.files()} == {"a.png", odd}
    assert cat.drop_missing(["a.png"]) == 1 and cat.count() == 1
    cat.close()
