"""The report in real headless Chromium: galleries, map and plots render, no console error, no
network request; a screenshot is kept.

Needs Debian's ``chromium`` (``.ci/run`` installs it) and the ``playwright`` package (the
``test`` extra), which drives the system browser without downloading one. The screenshot goes to
``tmp_path``, and also to ``$IMGCLUST_TEST_ARTIFACTS`` when that is set (CI sets ``artifacts/``).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

from imgclust.report import build_report
from report_fixtures import photo_run, tiny_run  # noqa: F401 (fixtures)

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))
                 if p), None)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH; "
                                "install it with: apt-get install -y chromium")

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

#: Chromium's own messages about its software WebGL, not errors of the page
BROWSER_NOISE = ("GL Driver Message", "GPU stall", "WebGL", "GroupMarkerNotSet")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def open_report(browser: Any, path: Path) -> tuple[Any, list[str], list[str]]:
    """Open ``path`` with every non-file request blocked and recorded; wait for every plot."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    blocked: list[str] = []
    page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}")
            if m.type in ("error", "warning") and not any(n in m.text for n in BROWSER_NOISE)
            else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))

    def route(r: Any) -> None:
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(path.resolve().as_uri())
    page.wait_for_function("window.imgclustReport && window.imgclustReport.ready")
    page.evaluate("window.imgclustReport.drawAll()")
    page.wait_for_function("r => r.plotted + r.plotErrors >= r.plots",
                           arg=page.evaluate_handle("window.imgclustReport"), timeout=60_000)
    return page, errors, blocked


def keep_screenshot(page: Any, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    dest = os.environ.get("IMGCLUST_TEST_ARTIFACTS")
    if dest:
        Path(dest).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(dest) / name)
    return shot


def test_photo_report_renders_in_chromium(browser, photo_run, tmp_path):
    out, _ = photo_run
    path = build_report(out)  # the default map (t-SNE on 37 images)
    page, errors, blocked = open_report(browser, path)
    state = page.evaluate("window.imgclustReport")
    assert state["plotErrors"] == 0 and state["plotted"] == state["plots"] >= 6
    # galleries: every thumbnail on the page decoded (lazy ones are loaded by scrolling)
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.evaluate("""() => Promise.all([...document.querySelectorAll('img.thumb')].map(i => {
        i.loading = 'eager'; return i.decode().catch(() => null); }))""")
    sizes = page.evaluate("[...document.querySelectorAll('img.thumb')].map(i => i.naturalWidth)")
    assert len(sizes) >= 3 * 11 and min(sizes) > 0
    # the disagreement gallery shows the one misfiled image, captioned with its class
    cap = page.inner_text("#disagree-pager .grid figcaption")
    assert cap.startswith("is red")
    # "show all" pages through a cluster
    page.click('button.show-all[data-cluster="0"]')
    n0 = page.evaluate("document.querySelectorAll('.pager[data-cluster=\"0\"] .tile').length")
    assert n0 == len(page.evaluate("JSON.parse(document.getElementById('report-data').textContent)"
                                   ".members['0']"))
    # the map is drawn (WebGL scatter) and its hover card shows an image and its name
    assert page.locator('#map .plot[data-drawn="done"] .main-svg').count() >= 1
    page.locator("#map .plot").scroll_into_view_if_needed()
    x, y = page.evaluate("""() => { const d = document.querySelector('#map .plot');
        const L = d._fullLayout, t = d._fullData[0], r = d.getBoundingClientRect();
        return [r.left + L._size.l + L.xaxis.l2p(t.x[0]), r.top + L._size.t + L.yaxis.l2p(t.y[0])]; }""")
    page.mouse.move(x - 30, y - 30)
    page.mouse.move(x, y, steps=5)  # a real pointer over the first point of cluster 0
    page.wait_for_selector("#hovercard:not([hidden]) img.thumb", timeout=10_000)
    assert page.inner_text("#hovercard").strip()
    for sel in ("#choosing-k .plot .main-svg", "#evaluation .plot .main-svg"):
        assert page.locator(sel).count() >= 1, sel
    shot = keep_screenshot(page, tmp_path, "report-photos.png")
    assert shot.stat().st_size > 50_000
    assert errors == [] and blocked == []
    page.close()


def test_tiny_image_sheets_and_compare_render(browser, tiny_run, tmp_path):
    path = build_report(tiny_run, map_method="pca")
    page, errors, blocked = open_report(browser, path)
    # sprite tiles: a background image cropped from a sheet that loaded
    bg = page.evaluate("getComputedStyle(document.querySelector('.thumb.sprite')).backgroundImage")
    assert "thumbs/sheet_000.png" in bg
    ok = page.evaluate("""() => new Promise(res => { const i = new Image();
        i.onload = () => res(i.naturalWidth); i.onerror = () => res(0);
        i.src = 'thumbs/sheet_000.png'; })""")
    assert ok == 40 * 8
    keep_screenshot(page, tmp_path, "report-tiny.png")
    assert errors == [] and blocked == []
    page.close()

    import imgclust

    cmp_dir = tmp_path / "cmp"
    imgclust.compare(tiny_run.parent / "tiny.npz", cmp_dir, methods=["kmeans", "gmm"],
                     features="pixels", k=4)
    page, errors, blocked = open_report(browser, build_report(cmp_dir))
    assert page.evaluate("window.imgclustReport.plotted") == 2
    assert page.locator("#agreement .main-svg").count() >= 1
    keep_screenshot(page, tmp_path, "report-compare.png")
    assert errors == [] and blocked == []
    page.close()
