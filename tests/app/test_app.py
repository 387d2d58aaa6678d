"""The labelling app in-process (FastAPI's TestClient): pages, every action and its undo, and
the safety cases (crafted image requests, symlinks out of the source, token, Host/Origin, XSS)."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from app_fixtures import (client_of, digits_base, digits_run, folder_base,  # noqa: F401
                          folder_run)
from imgclust.label.store import LabelStore

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def hdr(app) -> dict[str, str]:
    return {"X-Imgclust-Token": app.state.token}


def members(store: LabelStore, c: int) -> list[int]:
    return np.flatnonzero(store.current_clusters() == c).tolist()


# -- pages --------------------------------------------------------------------------------------
def test_overview_cards_sort_and_token(digits_run):
    client, app = client_of(digits_run)
    r = client.get("/")
    assert r.status_code == 200
    assert r.text.count('<article class="card') == 10
    assert f'content="{app.state.token}"' in r.text
    assert "default-src 'none'" in r.headers["content-security-policy"]
    sizes = np.bincount(LabelStore(digits_run).base_clusters)
    shown = [int(x) for x in __import__("re").findall(r"(\d+) images · mean", r.text)]
    assert shown == sorted(sizes.tolist(), reverse=True)
    r = client.get("/?sort=cohesion")
    assert r.status_code == 200
    coh = [float(x) for x in __import__("re").findall(r"mean distance ([\d.e+-]+)", r.text)]
    assert coh == sorted(coh)
    assert client.get("/?sort=bogus").status_code == 422


def test_cluster_page_nearest_first_paged(digits_run):
    client, app = client_of(digits_run)
    state = app.state.run
    view = state.view()
    c = max(view.members, key=lambda k: len(view.members[k]))
    r = client.get(f"/cluster/{c}")
    assert r.status_code == 200
    rows = [int(x) for x in __import__("re").findall(r'data-row="(\d+)"', r.text)]
    assert rows == view.members[c][:200].tolist()
    d = view.distance[rows]
    assert np.all(np.diff(d) >= 0)
    assert client.get(f"/cluster/{c}?page=99").status_code == 404
    assert client.get("/cluster/999").status_code == 404
    assert client.get("/next").status_code == 200


def test_thumbnails_of_an_array_run_are_pngs(digits_run):
    client, _ = client_of(digits_run)
    r = client.get("/thumb/5")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).size == (8, 8)
    assert client.get("/img/5").status_code == 200


# -- actions and undo ---------------------------------------------------------------------------
def test_label_selection_and_undo(digits_run):
    client, app = client_of(digits_run)
    store = LabelStore(digits_run)
    r = client.post("/api/label", json={"rows": [3, 4, 5], "label": "three"}, headers=hdr(app))
    assert r.status_code == 200, r.text
    batch = r.json()["batch"]
    assert {store.ids[i]: "three" for i in (3, 4, 5)}.items() <= store.given_labels().items()
    r = client.post("/api/label", json={"rows": [4], "label": "four"}, headers=hdr(app))
    assert store.given_labels()[store.ids[4]] == "four"
    r = client.post("/api/undo", json={}, headers=hdr(app))
    assert r.json()["batch"] != batch and store.given_labels()[store.ids[4]] == "three"
    assert client.post("/api/undo", json={"batch": batch}, headers=hdr(app)).json()["batch"] == batch
    assert store.given_labels() == {}
    assert client.post("/api/undo", json={"batch": batch}, headers=hdr(app)).status_code == 400
    # the label list of the page follows the store, in order of first use
    client.post("/api/label", json={"rows": [1], "label": "b"}, headers=hdr(app))
    client.post("/api/label", json={"rows": [2], "label": "a"}, headers=hdr(app))
    page = client.get("/cluster/0").text
    data = json.loads(page.split('id="page-data" type="application/json">')[1].split("</script>")[0])
    assert data["labels"] == ["b", "a"]


def test_remove_label_and_bad_requests(digits_run):
    client, app = client_of(digits_run)
    store = LabelStore(digits_run)
    client.post("/api/label", json={"rows": [0], "label": "x"}, headers=hdr(app))
    r = client.post("/api/label", json={"rows": [0], "label": None}, headers=hdr(app))
    assert r.status_code == 200 and store.ids[0] not in store.given_labels()
    for body in ({"rows": [len(store.ids)], "label": "x"}, {"rows": [-1], "label": "x"},
                 {"rows": [], "label": "x"}, {"rows": [0], "label": "a\nb"},
                 {"rows": [0], "label": "x" * 201}):
        r = client.post("/api/label", json=body, headers=hdr(app))
        assert r.status_code == 400 and r.json()["error"], body
    assert client.post("/api/label", json={"rows": "zero"}, headers=hdr(app)).status_code == 422


def test_select_from_here_on_takes_the_farthest(digits_run):
    client, app = client_of(digits_run)
    view = app.state.run.view()
    c = 0
    mem = view.members[c]
    r = client.post("/api/label", json={"from_cluster": c, "from_rank": len(mem) - 7,
                                        "label": "rim"}, headers=hdr(app))
    assert r.json()["n"] == 7
    store = LabelStore(digits_run)
    got = {store.index[i] for i in store.given_labels()}
    assert got == set(mem[-7:].tolist())
    d = view.distance
    assert min(d[list(got)]) >= max(d[mem[:-7]])


def test_name_cluster_escaped_and_undo(digits_run):
    client, app = client_of(digits_run)
    evil = "<script>alert(1)</script>"
    r = client.post("/api/name", json={"cluster": 2, "name": evil}, headers=hdr(app))
    assert r.status_code == 200
    assert LabelStore(digits_run).cluster_names() == {2: evil}
    for page in (client.get("/").text, client.get("/cluster/2").text,
                 client.get("/cluster/0").text):
        assert evil not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get("/").text
    # a label is escaped the same way (the page data carries it as JSON, <> escaped)
    client.post("/api/label", json={"rows": [0], "label": '"><img src=x onerror=alert(2)>'},
                headers=hdr(app))
    page = client.get(f"/cluster/{app.state.run.view().clusters[0]}").text
    assert "<img src=x" not in page
    client.post("/api/undo", json={}, headers=hdr(app))
    client.post("/api/undo", json={}, headers=hdr(app))
    assert LabelStore(digits_run).cluster_names() == {}
    assert client.post("/api/name", json={"cluster": 77, "name": "x"},
                       headers=hdr(app)).status_code == 400


def test_move_and_undo(digits_run):
    client, app = client_of(digits_run)
    store = LabelStore(digits_run)
    rows = members(store, 0)[:3]
    r = client.post("/api/move", json={"rows": rows, "to": 5}, headers=hdr(app))
    assert r.status_code == 200
    assert all(store.current_clusters()[rows] == 5)
    page = client.get("/cluster/5").text
    assert all(f'data-row="{i}"' in page for i in rows)
    client.post("/api/undo", json={}, headers=hdr(app))
    assert all(store.current_clusters()[rows] == 0)
    assert client.post("/api/move", json={"rows": rows, "to": 42},
                       headers=hdr(app)).status_code == 400


def test_merge_and_undo(digits_run):
    client, app = client_of(digits_run)
    store = LabelStore(digits_run)
    n1, n2 = len(members(store, 1)), len(members(store, 2))
    r = client.post("/api/merge", json={"a": 1, "b": 2}, headers=hdr(app))
    assert r.status_code == 200
    assert len(members(store, 2)) == n1 + n2 and not members(store, 1)
    assert client.get("/cluster/1").status_code == 404
    assert client.get("/").text.count('<article class="card') == 9
    client.post("/api/undo", json={}, headers=hdr(app))
    assert len(members(store, 1)) == n1
    assert client.post("/api/merge", json={"a": 1, "b": 1}, headers=hdr(app)).status_code == 400


@pytest.mark.parametrize("k", ["3", "auto"])
def test_split_and_undo(digits_run, k):
    client, app = client_of(digits_run)
    store = LabelStore(digits_run)
    before = members(store, 0)
    r = client.post("/api/split", json={"cluster": 0, "k": k}, headers=hdr(app))
    assert r.status_code == 200, r.text
    new = r.json()["new_clusters"]
    assert len(new) == r.json()["k"] and 2 <= len(new) <= 6 and (k == "auto" or len(new) == 3)
    cur = store.current_clusters()
    assert not members(store, 0) and set(cur[before].tolist()) == set(new)
    client.post("/api/undo", json={}, headers=hdr(app))
    assert members(store, 0) == before
    for bad in ("1", "x", "9999"):
        assert client.post("/api/split", json={"cluster": 0, "k": bad},
                           headers=hdr(app)).status_code == 400


def test_not_of_interest_and_undo(digits_run):
    client, app = client_of(digits_run)
    store = LabelStore(digits_run)
    r = client.post("/api/interest", json={"rows": [7, 8]}, headers=hdr(app))
    assert r.status_code == 200 and store.not_of_interest() == {store.ids[7], store.ids[8]}
    c = int(store.current_clusters()[7])
    rank = app.state.run.view().members[c].tolist().index(7)
    assert 'class="tile noi" data-row="7"' in client.get(f"/cluster/{c}?page={rank // 200}").text
    client.post("/api/undo", json={}, headers=hdr(app))
    assert store.not_of_interest() == set()


def test_propagate_accuracy_and_undo(digits_run):
    client, app = client_of(digits_run)
    store = LabelStore(digits_run)
    view = app.state.run.view()
    # two labels per cluster: the cluster's own number
    for c, mem in view.members.items():
        client.post("/api/label", json={"rows": mem[:2].tolist(), "label": f"c{c}"},
                    headers=hdr(app))
    acc = client.get("/api/accuracy").json()
    assert acc["n_labels"] == 20 and acc["accuracy"] is not None and acc["accuracy"] > 0.5
    r = client.post("/api/propagate", json={"mode": "nearest:20%"}, headers=hdr(app))
    assert r.status_code == 200 and r.json()["batch"]
    prop = {i for i, v in store.current_labels().items() if v[1] == "propagated"}
    assert 0 < len(prop) < len(store.ids) * 0.3
    r = client.post("/api/propagate", json={"mode": "cluster"}, headers=hdr(app))
    assert sum(v[1] == "propagated" for v in store.current_labels().values()) == \
        len(store.ids) - 20
    client.post("/api/undo", json={}, headers=hdr(app))
    assert {i for i, v in store.current_labels().items() if v[1] == "propagated"} == prop
    assert client.post("/api/propagate", json={"mode": "bogus"}, headers=hdr(app)).status_code == 400


def test_export_refuses_an_existing_folder(digits_run, tmp_path):
    client, app = client_of(digits_run)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep")
    r = client.post("/api/export", json={"folder": str(tmp_path / "full")}, headers=hdr(app))
    try:
        import imgclust.label.export  # noqa: F401
    except ImportError:
        assert r.status_code == 501
        pytest.skip("imgclust.label.export not in this tree yet")
    assert r.status_code == 400 and "already exists" in r.json()["error"]
    assert (tmp_path / "full" / "mine.txt").read_text() == "keep"
    assert client.post("/api/export", json={"folder": " "}, headers=hdr(app)).status_code == 400


# -- safety -------------------------------------------------------------------------------------
CRAFTED = ["/thumb/../../etc/passwd", "/thumb/%2e%2e%2f", "/thumb/%2e%2e%2fetc%2fpasswd",
           "/thumb/..%2f..%2fetc%2fpasswd", "/thumb/-1", "/thumb/99999999", "/thumb/1.5",
           "/thumb/0x1", "/img//etc/passwd", "/img/%2fetc%2fpasswd", "/img/~", "/thumb/",
           "/static/..%2f..%2fweb.py", "/static/../web.py", "/thumb/1/../../../etc/passwd"]


@pytest.mark.parametrize("path", CRAFTED)
def test_crafted_image_requests_never_give_a_file(digits_run, path):
    client, app = client_of(digits_run)
    # the raw path as sent (httpx would otherwise normalise dot segments away)
    url = httpx.URL("http://127.0.0.1", raw_path=path.encode())
    r = client.get(url, follow_redirects=False)
    assert r.status_code in (404, 422), (path, r.status_code)
    assert b"root:" not in r.content and not r.headers["content-type"].startswith("image/")


def test_symlink_out_of_the_source_folder_is_refused(folder_run):
    client, app = client_of(folder_run)
    ids = app.state.run.ids
    assert "zz_link.png" in ids  # the scan followed it (run time), the app does not serve it
    link = ids.index("zz_link.png")
    assert client.get(f"/thumb/{link}").status_code == 404
    assert client.get(f"/img/{link}").status_code == 404
    ok = ids.index("red_0.png")
    r = client.get(f"/thumb/{ok}")
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (24, 24)


def test_overview_of_a_folder_run_has_three_groups(folder_run):
    client, _ = client_of(folder_run)
    assert client.get("/").text.count('<article class="card') == 3


WRITES = [("/api/name", {"cluster": 0, "name": "n"}), ("/api/label", {"rows": [0], "label": "x"}),
          ("/api/move", {"rows": [0], "to": 1}), ("/api/merge", {"a": 0, "b": 1}),
          ("/api/split", {"cluster": 0, "k": "2"}), ("/api/interest", {"rows": [0]}),
          ("/api/undo", {}), ("/api/propagate", {"mode": "cluster"}),
          ("/api/export", {"folder": "x"})]


@pytest.mark.parametrize("path,body", WRITES)
def test_writes_need_the_token_and_the_same_origin(digits_run, path, body):
    client, app = client_of(digits_run)
    store = LabelStore(digits_run)
    good = hdr(app)
    for headers in ({}, {"X-Imgclust-Token": "wrong"}, {"X-Imgclust-Token": ""},
                    {**good, "Origin": "http://evil.example"},
                    {**good, "Origin": "http://127.0.0.1:9999"},
                    {**good, "Origin": "null"},
                    {**good, "Sec-Fetch-Site": "cross-site"}):
        r = client.post(path, json=body, headers=headers)
        assert r.status_code == 403, (headers, r.status_code)
    assert store.batches() == []  # nothing was written
    # a GET cannot write either
    assert client.get(path).status_code == 405
    # the page's own origin is accepted
    r = client.post("/api/label", json={"rows": [0], "label": "x"},
                    headers={**good, "Origin": "http://127.0.0.1", "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 200


def test_foreign_host_refused(digits_run):
    client, app = client_of(digits_run)
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/thumb/0", headers={"Host": "evil.example:8765"}).status_code == 400
    assert client.get("/", headers={"Host": "localhost:8765"}).status_code == 200
    assert client.get("/", headers={"Host": "[::1]:8765"}).status_code == 200
    client2, _ = client_of(digits_run, allowed_hosts=["*"])
    assert client2.get("/", headers={"Host": "box.lan"}).status_code == 200


def test_each_app_has_its_own_token(digits_run):
    _, a = client_of(digits_run)
    client, b = client_of(digits_run)
    assert a.state.token != b.state.token
    r = client.post("/api/label", json={"rows": [0], "label": "x"}, headers=hdr(a))
    assert r.status_code == 403


# -- the command --------------------------------------------------------------------------------
def cli(*args: str, **kw):
    return subprocess.run([sys.executable, "-m", "imgclust.cli", *args], capture_output=True,
                          text=True, timeout=60, **kw)


def test_serve_refuses_a_missing_or_invalid_dir(tmp_path):
    r = cli("serve", str(tmp_path / "nope"))
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "no such run directory" in r.stderr
    (tmp_path / "empty").mkdir()
    r = cli("serve", str(tmp_path / "empty"))
    assert r.returncode == 1 and "Traceback" not in r.stderr and r.stderr.startswith("error:")
    r = cli("serve", str(tmp_path), "--port", "70000")
    assert r.returncode == 2 and "--port 70000" in r.stderr


def _start(args: list[str]) -> tuple[subprocess.Popen, str]:
    p = subprocess.Popen([sys.executable, "-m", "imgclust.cli", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    return p, line


def test_serve_prints_its_url_and_serves(digits_run):
    p, line = _start(["serve", str(digits_run), "--port", "0"])
    try:
        assert line.startswith("serving ") and "http://127.0.0.1:" in line, line
        url = line.split(" at ")[1].split()[0]
        for _ in range(50):
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    assert resp.status == 200 and b"imgclust" in resp.read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the server did not answer")
    finally:
        p.terminate()
        p.wait(10)


def test_serve_warns_on_a_non_loopback_host(digits_run):
    p, line = _start(["serve", str(digits_run), "--port", "0", "--host", "0.0.0.0"])
    try:
        assert "http://0.0.0.0:" in line
    finally:
        p.terminate()
        _, err = p.communicate(timeout=10)
    assert "warning: --host 0.0.0.0" in err


def test_serve_port_in_use_is_one_line(digits_run):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        r = cli("serve", str(digits_run), "--port", str(s.getsockname()[1]))
    finally:
        s.close()
    assert r.returncode == 1 and r.stderr.startswith("error: cannot listen on 127.0.0.1:")
    assert "Traceback" not in r.stderr


def test_app_is_not_imported_by_the_core():
    code = "import imgclust, imgclust.cli, sys; print('fastapi' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ}, timeout=60)
    assert r.stdout.strip() == "False"


@pytest.mark.parametrize("fmt", ["csv", "folders"])
def test_export_writes_the_labels(digits_run, tmp_path, fmt):
    pytest.importorskip("imgclust.label.export")
    client, app = client_of(digits_run)
    store = LabelStore(digits_run)
    client.post("/api/label", json={"rows": [0, 1], "label": "zero"}, headers=hdr(app))
    client.post("/api/propagate", json={"mode": "cluster"}, headers=hdr(app))
    dest = tmp_path / "out" / fmt
    r = client.post("/api/export", json={"folder": str(dest), "format": fmt}, headers=hdr(app))
    assert r.status_code == 200, r.text
    assert r.json()["folder"] == str(dest) and r.json()["result"]["labels"] == 2
    text = (dest / "labels.csv").read_text()
    assert text.count(",zero,") == 2 and store.ids[1] in text
    if fmt == "folders":
        assert len(list((dest / "zero").iterdir())) == 2
    # with the propagated labels, into another folder; the same folder again is refused
    r = client.post("/api/export", json={"folder": str(dest) + "-all", "format": fmt,
                                         "machine": True}, headers=hdr(app))
    assert r.json()["result"]["labels"] == len(store.current_labels()) > 2
    r = client.post("/api/export", json={"folder": str(dest), "format": fmt}, headers=hdr(app))
    assert r.status_code == 400 and "already exists" in r.json()["error"]
    r = client.post("/api/export", json={"folder": str(tmp_path / "x"), "format": "zip"},
                    headers=hdr(app))
    assert r.status_code == 400 and "valid: csv" in r.json()["error"]
    assert not (tmp_path / "x").exists()  # the folder made for it is removed again


def test_noise_is_its_own_card(digits_run):
    client, app = client_of(digits_run)
    assert 'class="card noise"' not in client.get("/").text
    assert client.get("/cluster/-1").status_code == 404
    r = client.post("/api/move", json={"rows": [0, 1], "to": -1}, headers=hdr(app))
    assert r.status_code == 200
    page = client.get("/").text
    assert page.count('<article class="card noise" data-cluster="-1"') == 1
    assert page.rindex('class="card noise"') > page.rindex('<article class="card" ')  # last
    r = client.get("/cluster/-1")
    assert r.status_code == 200 and r.text.count('class="tile') == 2
    assert client.post("/api/split", json={"cluster": -1}, headers=hdr(app)).status_code == 400
