"""The labelling app in real headless Chromium, on a live uvicorn server on 127.0.0.1.

One walk through the app: name a cluster, label with the keyboard (1-9, arrows), move an image,
merge two clusters, propagate, export, undo with u; after each step the label store is checked.
No console error, no request leaves the server. Screenshots go to ``tmp_path`` and to
``$IMGCLUST_TEST_ARTIFACTS`` when set. Needs Debian's ``chromium`` and ``playwright``.
"""
from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from app_fixtures import digits_base, digits_run  # noqa: F401 (fixtures)
from imgclust.label.store import LabelStore

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))
                 if p), None)

pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH; install it "
                                 "with: apt-get install -y chromium"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def server(digits_run: Path) -> Iterator[tuple[str, Path]]:
    """uvicorn serving the app of a fresh digits run, in a thread, on a free loopback port."""
    import uvicorn

    from imgclust.app import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(digits_run), log_level="warning"))
    t = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    t.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", digits_run
    srv.should_exit = True
    t.join(10)
    sock.close()


def keep_screenshot(page: Any, tmp_path: Path, name: str) -> None:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=False)
    dest = os.environ.get("IMGCLUST_TEST_ARTIFACTS")
    if dest:
        Path(dest).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(dest) / name)


def wait_status(page: Any, text: str) -> str:
    page.wait_for_function("t => document.getElementById('status').textContent.includes(t)",
                           arg=text, timeout=20_000)
    return page.inner_text("#status")


def test_label_a_run_in_chromium(browser, server, tmp_path):
    base, run_dir = server
    store = LabelStore(run_dir)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    outside: list[str] = []
    page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on("request", lambda r: None if r.url.startswith(base) else outside.append(r.url))

    # the overview: ten cards, thumbnails loaded
    page.goto(base + "/")
    page.wait_for_function("() => window.imgclustApp && window.imgclustApp.ready")
    assert page.locator("article.card").count() == 10
    page.wait_for_function("() => Array.from(document.querySelectorAll('.card .rep img'))"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    keep_screenshot(page, tmp_path, "app-overview.png")

    # 1. name the largest cluster (first card)
    c0 = int(page.locator("article.card").first.get_attribute("data-cluster"))
    page.locator("article.card").first.locator("h2 a").click()
    page.wait_for_url(f"**/cluster/{c0}")
    page.fill("#name-text", "<b>loops</b>")
    page.click("#name-form button")
    wait_status(page, "name saved")
    assert store.cluster_names() == {c0: "<b>loops</b>"}
    assert page.inner_text("#cluster-name") == "<b>loops</b>"  # text, not markup

    # 2. label with the keyboard: two labels, key 1 on the first tile, arrow, key 2
    for lab in ("alpha", "beta"):
        page.fill("#new-label-text", lab)
        page.press("#new-label-text", "Enter")
    assert page.locator(".label-btn").all_inner_texts() == ["1 alpha", "2 beta"]
    tiles = page.locator("#grid .tile")
    rows = [int(tiles.nth(i).get_attribute("data-row")) for i in range(4)]
    tiles.nth(0).click()
    page.keyboard.press("1")
    wait_status(page, 'labelled 1 image "alpha"')
    page.keyboard.press("ArrowRight")   # the focus already moved on to tile 1: now tile 2
    page.keyboard.press("2")
    wait_status(page, 'labelled 1 image "beta"')
    given = store.given_labels()
    assert given == {store.ids[rows[0]]: "alpha", store.ids[rows[2]]: "beta"}
    assert tiles.nth(0).locator(".lab").inner_text() == "alpha"
    # shift-click a range, then key 1 labels all three
    tiles.nth(5).click()
    tiles.nth(7).click(modifiers=["Shift"])
    page.keyboard.press("1")
    wait_status(page, 'labelled 3 images "alpha"')
    range_rows = [int(tiles.nth(i).get_attribute("data-row")) for i in (5, 6, 7)]
    assert all(store.given_labels()[store.ids[r]] == "alpha" for r in range_rows)
    keep_screenshot(page, tmp_path, "app-cluster.png")

    # 3. u undoes the range
    with page.expect_navigation():
        page.keyboard.press("u")
    page.wait_for_function("() => window.imgclustApp && window.imgclustApp.ready")
    assert not any(store.ids[r] in store.given_labels() for r in range_rows)
    assert store.given_labels()[store.ids[rows[0]]] == "alpha"

    # 4. move the last tile of the page to another cluster
    tiles = page.locator("#grid .tile")
    moved = int(tiles.last.get_attribute("data-row"))
    target = int(page.locator("#move-to option").first.get_attribute("value"))
    tiles.last.click()
    page.select_option("#move-to", str(target))
    with page.expect_navigation():
        page.click("#move-form button")
    assert int(store.current_clusters()[moved]) == target

    # 5. merge this cluster into another one
    into = int(page.locator("#merge-into option").nth(1).get_attribute("value"))
    page.select_option("#merge-into", str(into))
    size = int((store.current_clusters() == c0).sum())
    before = int((store.current_clusters() == into).sum())
    with page.expect_navigation(url=f"**/cluster/{into}"):
        page.click("#merge-form button")
    assert int((store.current_clusters() == into).sum()) == before + size
    assert int((store.current_clusters() == c0).sum()) == 0

    # 6. propagate from the overview: the merged cluster holds the two labels (tie: alpha)
    page.goto(base + "/")
    page.wait_for_function("() => window.imgclustApp && window.imgclustApp.ready")
    assert page.locator("article.card").count() == 9
    page.fill("#search", str(into))      # the search box filters the cards (names, numbers)
    assert page.locator("article.card:visible").count() == 1
    page.fill("#search", "")
    assert page.locator("article.card:visible").count() == 9
    page.select_option("#propagate-mode", "cluster")
    with page.expect_navigation():
        page.click("#propagate button")
    prop = [v for v in store.current_labels().values() if v[1] == "propagated"]
    assert len(prop) == int((store.current_clusters() == into).sum()) - 2
    # an arrow function, not an expression: Playwright polls a bare expression with eval(),
    # which the app's CSP (script-src 'self') refuses whenever the first check is false
    page.wait_for_function("() => document.getElementById('accuracy').textContent !== '…'")
    assert "cross-validation needs" in page.inner_text("#accuracy")  # one label per class
    keep_screenshot(page, tmp_path, "app-overview-after.png")

    # 7. export to a folder typed in the form
    try:
        import imgclust.label.export  # noqa: F401
    except ImportError:
        pytest.skip("imgclust.label.export is not in this tree yet: export step not run")
    dest = tmp_path / "exported"
    page.fill("#export-folder", str(dest))
    page.click("#export button")
    wait_status(page, "exported to")
    files = [p for p in dest.rglob("*") if p.is_file()]
    assert files, "the export wrote nothing"
    text = "".join(p.read_text(errors="replace") for p in files if p.suffix in (".csv", ".json"))
    assert "alpha" in text and "beta" in text
    assert errors == []
    # a second export to the same folder is refused (the browser logs the 400) and nothing changes
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    page.click("#export button")
    wait_status(page, "already exists")
    assert {p: p.stat().st_mtime_ns for p in files} == mtimes
    assert len(errors) == 1 and "400" in errors[0]
    assert outside == []
    page.close()
    np.testing.assert_equal(len(store.ids), 1797)
