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


@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_store_take_reads_any_order_with_repeats(tmp_path, chunk):
    rng = np.random.default_rng(1)
    A = rng.random((50, 4), dtype=np.float32)
    s = FeatureStore(tmp_path / "s.f32")
    s.append(A[:20])
    s.append(A[20:])
    rows = np.concatenate([rng.permutation(50)[:30], [7, 7, 49, 0]])
    np.testing.assert_array_equal(s.take(rows, chunk=chunk), A[rows])
    assert s.take(np.array([], dtype=np.int64)).shape == (0, 4)
    with pytest.raises(IndexError, match="holds 50"):
        s.take(np.array([50]))
    s.close()


def test_catalog_lookup_in_and_out_of_order_matches_the_table(tmp_path):
    """lookup streams the table in id order: ids asked in order, out of order, repeated,
    absent (before, between and after the stored ones), and after a write, all answer as
    the table does."""
    cat = Catalog(tmp_path / "c.sqlite")
    names = [f"d{j % 3}/f{j:03d}.png" for j in range(0, 120, 2)] + ["\u00e9.png", "b\udcff.png"]
    rows = [FileRow(n, "/x/" + n, j, j + 1, f"h{j}", "ok", None, j, j, "RGB")
            for j, n in enumerate(names)]
    cat.commit_batch(rows[:40], {f"h{j}": j for j in range(40)}, n_rows=40, dim=2)
    want = {r.id: (r.size, r.mtime_ns, r.hash, "ok", None, r.width, r.height, "RGB", j)
            for j, r in enumerate(rows[:40])}
    asked = sorted(names + ["a.png", "d1/f001.png", "zz.png"])
    rng = np.random.default_rng(0)
    for order in (asked, asked[::-1], [asked[int(j)] for j in rng.integers(0, len(asked), 80)]):
        assert [cat.lookup(i) for i in order] == [want.get(i) for i in order]
    half = len(asked) // 3
    assert [cat.lookup(i) for i in asked[:half]] == [want.get(i) for i in asked[:half]]
    cat.commit_batch(rows[40:], {f"h{j}": j for j in range(40, len(rows))}, n_rows=len(rows),
                     dim=2)  # a write in the middle of an ordered pass
    want.update({r.id: (r.size, r.mtime_ns, r.hash, "ok", None, r.width, r.height, "RGB", j + 40)
                 for j, r in enumerate(rows[40:])})
    assert [cat.lookup(i) for i in asked[half:]] == [want.get(i) for i in asked[half:]]
    assert cat.drop_missing(names[5:]) == 5 and cat.count() == len(names) - 5
    assert [cat.lookup(i) for i in names] == [None] * 5 + [want[i] for i in names[5:]]
    assert cat.drop_missing(names[5:]) == 0
    cat.close()


def test_catalog_write_on_a_full_disk_is_an_oserror_naming_the_database(tmp_path):
    """SQLite's "database or disk is full" (its failed COMMIT has already rolled back, so a
    second ROLLBACK used to hide it behind "no transaction is active") becomes ENOSPC."""
    import errno
    import sqlite3

    cat = Catalog(tmp_path / "c.sqlite")
    cat.con.execute("BEGIN IMMEDIATE")
    cat.con.execute("INSERT INTO meta VALUES ('x', '1')")
    with pytest.raises(OSError) as info:
        cat._abort(sqlite3.OperationalError("database or disk is full"))
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "c.sqlite")
    assert not cat.con.in_transaction and cat.get_meta("x") is None  # rolled back
    cat._abort(ValueError("other"))  # no transaction left: nothing to roll back, no error
    cat.close()
