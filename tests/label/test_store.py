"""The label store: each operation, undo, two writers at once, a kill mid-write."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from imgclust.errors import ConfigError, RunDirError
from imgclust.io import KILL_ENV
from imgclust.label import DB_NAME, LabelError, LabelStore

from label_fixtures import two_blobs, write_run

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def run(tmp_path: Path) -> Path:
    X, y = two_blobs(10)
    return write_run(tmp_path / "run", [f"img{i:02d}" for i in range(20)], y, X, "dataset:x")


def n_label_rows(run: Path) -> int:
    con = sqlite3.connect(run / DB_NAME)
    try:
        return con.execute("SELECT COUNT(*) FROM events WHERE op = 'label'").fetchone()[0]
    finally:
        con.close()


def test_label_current_labels_and_counts(run: Path) -> None:
    s = LabelStore(run)
    s.label(["img00", "img01"], "cat")
    s.label(["img10"], "dog", source="import")
    s.label(["img11", "img12"], "dog", source="propagated", confidence=0.75)
    cur = s.current_labels()
    assert cur["img00"] == ("cat", "human", None)
    assert cur["img10"] == ("dog", "import", None)
    assert cur["img11"] == ("dog", "propagated", 0.75)
    assert "img02" not in cur
    assert s.counts() == {"cat": {"human": 2}, "dog": {"import": 1, "propagated": 2}}
    assert s.given_labels() == {"img00": "cat", "img01": "cat", "img10": "dog"}
    assert set(s.current_labels(["propagated"])) == {"img11", "img12"}
    # a second store object (another process would do the same) sees the same state
    assert LabelStore(run).current_labels() == cur


def test_a_persons_label_wins_over_a_machine_label_and_clear(run: Path) -> None:
    s = LabelStore(run)
    s.label(["img00"], "cat")
    s.label(["img00", "img01"], "dog", source="propagated", confidence=0.9)
    assert s.current_labels()["img00"] == ("cat", "human", None)  # later, but a machine's
    assert s.current_labels()["img01"][0] == "dog"
    s.label(["img01"], "cat")  # a person overrides the propagated label
    assert s.current_labels()["img01"] == ("cat", "human", None)
    s.clear(["img01"])  # removing the person's label shows the machine's again
    assert s.current_labels()["img01"] == ("dog", "propagated", 0.9)
    s.clear(["img01"], source="propagated")
    assert "img01" not in s.current_labels()


def test_undo_a_batch_and_undo_last(run: Path) -> None:
    s = LabelStore(run)
    b1 = s.label(["img00", "img01"], "cat")
    b2 = s.label(["img00"], "dog")
    assert s.current_labels()["img00"][0] == "dog"
    assert s.undo(b2) == 1
    assert s.current_labels()["img00"][0] == "cat"  # the earlier label is back
    with pytest.raises(LabelError, match="nothing to undo"):
        s.undo(b2)
    with pytest.raises(LabelError, match="nothing to undo"):
        s.undo("no-such-batch")
    assert s.undo_last() == b1
    assert s.current_labels() == {}
    assert s.undo_last() is None
    # undone events stay in the log (event-sourced), flagged
    assert n_label_rows(run) == 3
    assert [b["undone"] for b in s.batches()] == [True, True]


def test_undo_last_takes_back_a_whole_batch(run: Path) -> None:
    s = LabelStore(run)
    s.label(["img00"], "cat")
    b = s.label_each({"img01": "cat", "img02": "dog", "img03": None}, source="propagated",
                     confidences={"img01": 0.5, "img02": 0.6}, op_name="propagate")
    assert b.startswith("propagate-")
    assert s.undo_last() == b
    assert s.current_labels() == {"img00": ("cat", "human", None)}


def test_cluster_names(run: Path) -> None:
    s = LabelStore(run)
    s.name_cluster(0, "small")
    b = s.name_cluster(0, "zeros")
    s.name_cluster(1, "ones")
    assert s.cluster_names() == {0: "zeros", 1: "ones"}
    s.undo(b)
    assert s.cluster_names() == {0: "small", 1: "ones"}
    s.name_cluster(1, None)
    assert s.cluster_names() == {0: "small"}
    with pytest.raises(ConfigError, match="cluster 7 does not exist"):
        s.name_cluster(7, "x")


def test_move_merge_split_and_cluster_of(run: Path) -> None:
    s = LabelStore(run)
    assert s.cluster_of(["img00", "img10"]) == {"img00": 0, "img10": 1}
    mv = s.move(["img00", "img01"], 1)
    assert s.cluster_of(["img00", "img01", "img02"]) == {"img00": 1, "img01": 1, "img02": 0}
    b, new = s.split({"img10": 0, "img11": 0, "img12": 1})
    assert new == {0: 2, 1: 3}  # fresh ids after the run's 0 and 1
    assert s.cluster_of(["img10", "img11", "img12", "img13"]) == {
        "img10": 2, "img11": 2, "img12": 3, "img13": 1}
    s.merge(3, 2)
    assert s.cluster_of(["img12"]) == {"img12": 2}
    s.merge(0, 1)
    assert set(s.current_clusters().tolist()) == {1, 2}
    s.undo_last()  # the merge of 0 into 1
    assert s.cluster_of(["img02"]) == {"img02": 0}
    s.undo(mv)
    assert s.cluster_of(["img00"]) == {"img00": 0}
    s.undo(b)  # the split's images go back; the merge 3 -> 2 now has nothing to merge
    assert s.cluster_of(["img10", "img12"]) == {"img10": 1, "img12": 1}
    assert s.split({"img05": 0})[1] == {0: 4}  # an undone split's ids are never reused
    assert (s.base_clusters == np.repeat([0, 1], 10)).all()  # clusters.csv is untouched


def test_cluster_edits_are_checked(run: Path) -> None:
    s = LabelStore(run)
    with pytest.raises(ConfigError, match="cluster 9 does not exist"):
        s.move(["img00"], 9)
    with pytest.raises(ConfigError, match="into itself"):
        s.merge(1, 1)
    s.move([f"img{i:02d}" for i in range(10)], 1)
    with pytest.raises(ConfigError, match="cluster 0 has no images"):
        s.merge(0, 1)
    s.move(["img00"], 0)  # an emptied cluster can be filled again
    assert s.cluster_of(["img00"]) == {"img00": 0}


def test_not_of_interest(run: Path) -> None:
    s = LabelStore(run)
    s.mark_not_of_interest(["img00", "img01"])
    s.mark_not_of_interest(["img01"], value=False)
    assert s.not_of_interest() == {"img00"}
    s.undo_last()
    assert s.not_of_interest() == {"img00", "img01"}


def test_unknown_ids_bad_labels_sources_confidences(run: Path) -> None:
    s = LabelStore(run)
    with pytest.raises(LabelError, match=r"2 of 3 ids are not images of the run .*'nope'"):
        s.label(["img00", "nope", "nope2"], "cat")
    with pytest.raises(ConfigError, match="label '' is empty"):
        s.label(["img00"], "")
    with pytest.raises(ConfigError, match="control character"):
        s.label(["img00"], "a\nb")
    with pytest.raises(ConfigError, match="label source 'robot'; valid: human, propagated"):
        s.label(["img00"], "cat", source="robot")
    with pytest.raises(ConfigError, match="confidence=1.5 must be between 0 and 1"):
        s.label(["img00"], "cat", source="model", confidence=1.5)
    for call in (lambda: s.label([], "cat"), lambda: s.move([], 1),
                 lambda: s.mark_not_of_interest([]), lambda: s.split({})):
        with pytest.raises(ConfigError, match="no images given|at least one image"):
            call()
    assert s.current_labels() == {}  # nothing half-written
    assert n_label_rows(run) == 0


def test_a_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    name = os.fsdecode(b"bad\xff.png")  # holds a lone surrogate
    X, y = two_blobs(2)
    run = write_run(tmp_path / "run", [name, "a", "b", "c"], y, X, "dataset:x")
    s = LabelStore(run)
    s.label([name], "odd")
    s.move([name], 1)
    assert s.current_labels() == {name: ("odd", "human", None)}
    assert s.cluster_of([name]) == {name: 1}


def test_store_refuses_what_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="no such run directory"):
        LabelStore(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match="holds no finished imgclust run"):
        LabelStore(tmp_path / "empty")


def test_a_newer_store_format_is_refused(run: Path) -> None:
    LabelStore(run)
    con = sqlite3.connect(run / DB_NAME)
    con.execute("PRAGMA user_version = 99")
    con.close()
    with pytest.raises(RunDirError, match="format 99 is newer"):
        LabelStore(run)


def test_wal_mode_and_durable_commits(run: Path) -> None:
    LabelStore(run)
    con = sqlite3.connect(run / DB_NAME)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        con.close()


WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {src!r})
    from imgclust.label import LabelStore
    s = LabelStore(sys.argv[1])
    who = sys.argv[2]
    print("ready", flush=True)
    sys.stdin.readline()  # both start writing at once
    for i in range(200):
        s.label([f"img{{i % 20:02d}}"], f"{{who}}-{{i}}")
    print("done", flush=True)
""")


def test_two_writers_at_once_both_land(run: Path) -> None:
    LabelStore(run)  # the schema exists before both start
    code = WRITER.format(src=SRC)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(run), who], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for who in ("a", "b")]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out.strip() == "done"
    assert n_label_rows(run) == 400
    con = sqlite3.connect(run / DB_NAME)
    by = dict(con.execute("SELECT substr(label, 1, 1), COUNT(*) FROM events GROUP BY 1"))
    con.close()
    assert by == {"a": 200, "b": 200}


KILLED = textwrap.dedent("""
    import sys
    sys.path.insert(0, {src!r})
    from imgclust.label import LabelStore
    s = LabelStore(sys.argv[1])
    n = 0
    while True:
        s.label_each({{f"img{{i:02d}}": f"batch{{n}}" for i in range(20)}})
        n += 1
        print(n, flush=True)
""")


def test_killed_inside_a_transaction_loses_only_that_transaction(run: Path) -> None:
    LabelStore(run).label(["img00"], "before")
    # the 3rd write transaction of the child (its 1st is opening the store) is killed after
    # its 20 rows were inserted and before they were committed
    env = dict(os.environ, **{KILL_ENV: "labels:3"})
    p = subprocess.run([sys.executable, "-c", KILLED.format(src=SRC), str(run)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == -signal.SIGKILL
    assert p.stdout.split() == ["1"]
    s = LabelStore(run)
    con = sqlite3.connect(run / DB_NAME)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    assert n_label_rows(run) == 1 + 20
    assert {v[0] for v in s.current_labels().values()} == {"batch0"}


def test_sigkill_at_any_moment_keeps_whole_batches(run: Path) -> None:
    LabelStore(run)
    p = subprocess.Popen([sys.executable, "-c", KILLED.format(src=SRC), str(run)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = 0
    while seen < 5:  # let it commit a few batches, then kill it wherever it is
        line = p.stdout.readline()
        assert line, p.stderr.read()
        seen = int(line)
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    p.stdout.close()
    p.stderr.close()
    rows = n_label_rows(run)
    assert rows % 20 == 0 and rows >= 20 * seen  # whole batches only, none acknowledged lost
    con = sqlite3.connect(run / DB_NAME)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    sizes = {n for (n,) in con.execute("SELECT COUNT(*) FROM events WHERE op = 'label' "
                                       "GROUP BY batch")}
    con.close()
    assert sizes == {20}
    LabelStore(run).label(["img00"], "after")  # the store is writable again


def test_two_threads_sharing_one_store_both_land(run: Path) -> None:
    import threading

    s = LabelStore(run)  # one store object, as the web app holds it; a connection per thread

    def write(who: str) -> None:
        for i in range(100):
            s.label([f"img{i % 20:02d}"], f"{who}-{i}")

    threads = [threading.Thread(target=write, args=(w,)) for w in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert n_label_rows(run) == 200
