"""The outlier gallery and the duplicate groups in their own reports and in the run's report.html
(through the run's manifest), parsed with html5lib (issue 14)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

html5lib = pytest.importorskip("html5lib")

NS = {"h": "http://www.w3.org/1999/xhtml"}


def imgclust(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "imgclust.cli", *args], capture_output=True,
                          text=True, timeout=600)


def parse(path: Path):
    return html5lib.parse(path.read_bytes(), treebuilder="etree", namespaceHTMLElements=True)


def data_images(node) -> list:
    return [im for im in node.iterfind(".//h:img", NS)
            if (im.get("src") or "").startswith("data:image/png;base64,")]


@pytest.fixture
def run_with_report(tmp_path: Path, make_colors) -> Path:
    """Three colour groups of 8, one white image with a black cross, one byte copy of a red
    image; a k-means run with its report."""
    from PIL import Image, ImageDraw

    from imgclust.report import build_report
    from imgclust.run.pipeline import run

    root = tmp_path / "imgs"
    make_colors(root, n_per=8, size=16)
    im = Image.new("RGB", (16, 16), "white")
    ImageDraw.Draw(im).line([(0, 0), (15, 15)], fill="black", width=3)
    im.save(root / "odd.png")
    first = sorted(p for p in root.rglob("*.png") if p.name != "odd.png")[0]
    shutil.copyfile(first, root / "copy_of_first.png")
    run_dir = tmp_path / "run"
    run(root, run_dir, features="pixels:8", method="kmeans", k=3)
    build_report(run_dir)
    return run_dir


def test_outliers_and_duplicates_join_the_run_report(tmp_path, run_with_report):
    run_dir = run_with_report
    assert parse(run_dir / "report.html").find(".//h:section[@id='outliers']", NS) is None
    res = imgclust("outliers", str(run_dir), "--out", str(tmp_path / "o"), "-q")
    assert res.returncode == 0, res.stderr
    assert f"gallery added to {run_dir / 'report.html'}" in res.stdout
    # its own report: a self-contained gallery (thumbnails embedded)
    own = parse(tmp_path / "o" / "outliers.html")
    assert len(data_images(own)) >= 1
    # the run's report: the gallery, linked to the command's report, through the manifest
    written = json.loads((run_dir / "run.json").read_text())["written"]
    assert "outliers.json" in written
    page = parse(run_dir / "report.html")
    sec = page.find(".//h:section[@id='outliers']", NS)
    assert sec is not None
    imgs = data_images(sec)
    assert len(imgs) == json.loads((run_dir / "outliers.json").read_text())["flagged"] >= 1
    assert imgs[0].get("alt") == "odd.png"  # the planted odd image ranks first
    links = [a.get("href") for a in sec.iterfind(".//h:a", NS)]
    assert links == ["../o/outliers.html"]
    assert any(a.get("href") == "#outliers" for a in page.iterfind(".//h:nav//h:a", NS))

    res = imgclust("duplicates", str(run_dir), "--out", str(tmp_path / "d"))
    assert res.returncode == 0, res.stderr
    assert f"groups added to {run_dir / 'report.html'}" in res.stdout
    own = parse(tmp_path / "d" / "duplicates.html")
    assert len(data_images(own)) == 2
    assert "duplicates.json" in json.loads((run_dir / "run.json").read_text())["written"]
    page = parse(run_dir / "report.html")
    sec = page.find(".//h:section[@id='duplicates']", NS)
    groups = sec.findall(".//h:div[@class='strip duplicate-group']", NS)
    assert len(groups) == 1
    alts = sorted(im.get("alt") for im in data_images(groups[0]))
    assert len(alts) == 2 and "copy_of_first.png" in alts  # the copy and its original
    assert page.find(".//h:section[@id='outliers']", NS) is not None  # both sections stay


def test_a_users_file_in_the_run_dir_is_left_alone(tmp_path, run_with_report):
    run_dir = run_with_report
    (run_dir / "outliers.json").write_text("mine")
    res = imgclust("outliers", str(run_dir), "--out", str(tmp_path / "o"), "-q")
    assert res.returncode == 0, res.stderr
    assert (run_dir / "outliers.json").read_text() == "mine"
    assert "gallery added" not in res.stdout
    assert "outliers.json" not in json.loads((run_dir / "run.json").read_text())["written"]
    assert parse(run_dir / "report.html").find(".//h:section[@id='outliers']", NS) is None
    assert (tmp_path / "o" / "outliers.html").is_file()
