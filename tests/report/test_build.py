"""build_report: what the HTML holds, its thumbnails, validity, and that it needs no network."""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

import imgclust
from imgclust.cli import main
from imgclust.errors import ConfigError, RunDirError
from imgclust.report import build_report
from imgclust.report.embed import stratified_sample
from imgclust.report.thumbs import sheet_name, thumb_name
from report_fixtures import make_photos, photo_run, tiny_run  # noqa: F401 (fixtures)


def page_data(html: str) -> dict:
    m = re.search(r'<script id="report-data" type="application/json">(.*?)</script>', html, re.S)
    assert m, "the page data block is missing"
    return json.loads(m.group(1))


def parse_strict(html: str):
    html5lib = pytest.importorskip("html5lib")
    # strict: any HTML parse error (bad nesting, unclosed tags, stray characters) raises
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(html)


def test_photo_report_shows_every_section(photo_run):
    out, truth = photo_run
    path = build_report(out, map_method="pca")
    assert path == out / "report.html"
    html = path.read_text(encoding="utf-8")
    summary = json.loads((out / "summary.json").read_text())
    for anchor in ("overview", "clusters", "map", "choosing-k", "evaluation"):
        assert f'id="{anchor}"' in html
    for c in summary["cluster_sizes"]:
        assert f'id="cluster-{c}"' in html
    # the skipped file is listed with its reason
    assert "notes.png" in html and summary["skipped"][0]["reason"] in html
    data = page_data(html)
    assert data["mode"] == "files" and data["n"] == summary["n_images"] == 37
    # every row has its thumbnail file, a real JPEG of at most 64 px
    from PIL import Image

    for r in range(data["n"]):
        with Image.open(out / thumb_name(r)) as im:
            assert im.format == "JPEG" and max(im.size) <= 64
    assert {"sizes", "k_inertia", "k_silhouette", "map", "silhouette", "confusion"} <= set(data["figs"])
    # the blue image filed under red/ is the one image whose cluster disagrees with its class
    ids = data["ids"]
    assert [ids[r] for r in data["disagree"]] == ["red/odd_one.png"]
    assert sorted(len(v) for v in data["members"].values()) == [12, 12, 13]


def test_html_is_valid_and_needs_no_network(photo_run):
    out, _ = photo_run
    html = build_report(out, map_method="pca").read_text(encoding="utf-8")
    doc = parse_strict(html)
    refs = [e.get(a) for e in doc.iter() for a in ("src", "href") if e.get(a)]
    assert refs, "expected scripts and images"
    for ref in refs:
        assert not re.match(r"^[a-z]+:", ref) and not ref.startswith("//"), ref
        if not ref.startswith("#"):
            assert (out / ref).exists(), f"{ref} is referenced but not written"
    assert "http://" not in html and "https://" not in html
    assert (out / "plotly.min.js").stat().st_size > 1_000_000


def test_tiny_images_go_to_sheets(tiny_run):
    html = build_report(tiny_run, map_method="pca").read_text(encoding="utf-8")
    data = page_data(html)
    assert data["mode"] == "sheet" and data["ids"] is None  # array ids are the row numbers
    from PIL import Image

    with Image.open(tiny_run / sheet_name(0)) as im:
        assert im.size == (40 * 8, 10 * 8)  # 400 rows, 40 cells of 8 px per line
    assert not (tiny_run / "thumbs" / "000").exists()
    assert html.count('class="thumb sprite"') >= 4 * 11  # centre + 5 nearest + 5 farthest each
    assert "class=\"small-images\"" in html


def test_rebuild_reuses_thumbnails_and_map(tiny_run):
    build_report(tiny_run, map_method="pca")
    sheet = tiny_run / sheet_name(0)
    mtimes = (sheet.stat().st_mtime_ns, (tiny_run / "thumbs" / "map.npz").stat().st_mtime_ns)
    first = page_data((tiny_run / "report.html").read_text())
    build_report(tiny_run, map_method="pca")
    assert (sheet.stat().st_mtime_ns, (tiny_run / "thumbs" / "map.npz").stat().st_mtime_ns) == mtimes
    assert page_data((tiny_run / "report.html").read_text())["figs"] == first["figs"]


def test_report_survives_a_source_that_is_gone(photo_run):
    out, _ = photo_run
    shutil.rmtree(out.parent / "photos")
    html = build_report(out, map_method="pca").read_text(encoding="utf-8")
    assert "The images cannot be shown" in html and "no such file or folder" in html
    assert 'class="thumb missing"' in html
    data = page_data(html)
    assert data["thumbs"] is False and data["truth"] is None
    parse_strict(html)


def test_changed_source_is_flagged(photo_run):
    out, _ = photo_run
    (out.parent / "photos" / "blue" / "blue_0.png").unlink()
    html = build_report(out, map_method="pca").read_text(encoding="utf-8")
    assert "The source has changed since this run" in html
    assert "1 image(s) could not be read again" in html


def test_noise_is_its_own_group(tmp_path):
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 10], [0, 10]], float)
    pts = np.concatenate([c + rng.normal(0, 0.3, (40, 2)) for c in centres] +
                         [rng.uniform(-20, 30, (6, 2))])
    imgs = (np.clip(pts - pts.min(), 0, None)[:, :, None] * np.ones((1, 2, 8)) * 6).astype(np.uint8)
    npz = tmp_path / "pts.npz"
    np.savez(npz, images=imgs)
    out = tmp_path / "run"
    res = imgclust.run(npz, out, features="pixels", method="dbscan")
    assert (res.labels_ == -1).any()
    html = build_report(out, map_method="pca").read_text(encoding="utf-8")
    assert 'id="cluster--1"' in html and "Noise / outliers" in html
    assert "DBSCAN eps sweep" in html and 'data-fig="k_eps"' in html
    assert html.index('id="cluster-0"') < html.index('id="cluster--1"')  # noise last


def test_density_k_is_told_in_words(tmp_path):
    rng = np.random.default_rng(1)
    groups = [np.full((30, 6, 6), v) + rng.normal(0, 3, (30, 6, 6)) for v in (20, 120, 220)]
    npz = tmp_path / "three.npz"
    np.savez(npz, images=np.clip(np.concatenate(groups), 0, 255).astype(np.uint8))
    out = tmp_path / "run"
    res = imgclust.run(npz, out, features="pixels", method="kmeans", criterion="density")
    assert len(set(res.labels_)) == 3
    html = build_report(out, map_method="pca").read_text(encoding="utf-8")
    assert re.search(r"HDBSCAN found 3 dense groups \(smallest allowed: 5 images; "
                     r"\d+\.\d % of the images were noise", html)
    assert "Dense groups found by HDBSCAN" in html and "No sweep was run" not in html
    assert re.search(r'<tr class="chosen"><td>3</td>', html)  # clusters_found of the chosen row


@pytest.mark.parametrize("criterion", ["graph", "modularity"])
def test_graph_k_is_told_in_words_with_its_plots(tmp_path, criterion):
    rng = np.random.default_rng(1)
    groups = [np.full((40, 6, 6), v) + rng.normal(0, 3, (40, 6, 6)) for v in (20, 120, 220)]
    npz = tmp_path / "three.npz"
    np.savez(npz, images=np.clip(np.concatenate(groups), 0, 255).astype(np.uint8))
    out = tmp_path / "run"
    res = imgclust.run(npz, out, features="pixels", method="knn-spectral", criterion=criterion)
    assert len(set(res.labels_)) == 3
    html = build_report(out, map_method="pca").read_text(encoding="utf-8")
    if criterion == "graph":  # three separate groups: three zero eigenvalues, then the gap
        assert re.search(r"k = 3: the largest gap in the nearest-neighbour graph(&#39;|')s "
                         r"Laplacian eigenvalues comes after the 3 smallest, .* both rules agree", html)
    else:
        assert "k = 3: of the spectral clusterings with k = 2…15, the one" in html
    assert 'data-fig="k_modularity"' in html and 'data-fig="k_eigengap"' in html
    assert 'data-fig="k_inertia"' not in html  # no k-means inertia for a graph method
    parse_strict(html)


def test_compare_report(tmp_path, tiny_run):
    npz = tiny_run.parent / "tiny.npz"
    out = tmp_path / "cmp"
    imgclust.compare(npz, out, methods=["kmeans", "agglomerative"], features="pixels", k=4)
    html = build_report(out).read_text(encoding="utf-8")
    data = page_data(html)
    assert set(data["figs"]) == {"agreement", "compare_sizes"}
    assert data["figs"]["agreement"]["data"][0]["x"] == ["kmeans", "agglomerative"]
    assert "<td>kmeans</td>" in html and "<td>agglomerative</td>" in html
    parse_strict(html)


def test_compare_report_shows_what_each_method_found(tmp_path, photo_run):
    """Each method's clusters with the images nearest their centres, thumbnails made only for
    the images shown."""
    src_dir = photo_run[0].parent / "photos"  # the fixture's folder (report_fixtures.photo_run)
    out = tmp_path / "cmp"
    res = imgclust.compare(src_dir, out, methods=["kmeans", "agglomerative"], features="pixels:8",
                           k=3)
    html = build_report(out).read_text(encoding="utf-8")
    tree = parse_strict(html)
    galleries = tree.findall(".//details[@class='method-gallery']")
    assert [g.find("summary").text.split(":")[0] for g in galleries] == ["kmeans", "agglomerative"]
    for g, m in zip(galleries, ["kmeans", "agglomerative"]):
        labels = res.results[m][0].labels
        strips = g.findall(".//div[@class='strip']")
        sizes = sorted((int((labels == c).sum()) for c in np.unique(labels)), reverse=True)
        assert [int(s.find("h4/span").text.strip("( images)")) for s in strips] == sizes
        imgs = g.findall(".//img[@class='thumb']")
        assert len(imgs) == sum(min(6, n) for n in sizes)
        for im in imgs:  # every thumbnail shown exists
            assert (out / im.get("src")).is_file()
    made = json.loads((out / "thumbs" / "manifest.json").read_text())
    shown = {im.get("src") for im in tree.findall(".//img[@class='thumb']")}
    assert made["rows"] == len(shown) < len(res.features_.ids)  # only the images shown


def test_not_a_run_dir_is_refused(tmp_path):
    with pytest.raises(RunDirError, match="no such run directory"):
        build_report(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match="holds no finished imgclust run"):
        build_report(tmp_path / "empty")


def test_bad_map_method_is_refused(tiny_run):
    with pytest.raises(ConfigError, match="valid: auto, umap, tsne, pca"):
        build_report(tiny_run, map_method="mds")


def test_stratified_sample_keeps_every_cluster():
    labels = np.r_[np.zeros(9000, int), np.ones(900, int), np.full(100, 2), np.full(5, -1)]
    rows = stratified_sample(labels, 1000, seed=0)
    assert len(rows) <= 1000 and len(np.unique(rows)) == len(rows)
    counts = {c: int((labels[rows] == c).sum()) for c in (-1, 0, 1, 2)}
    assert counts[-1] == 5 and counts[2] >= 20 and counts[0] > counts[1] > counts[2]
    np.testing.assert_array_equal(stratified_sample(labels[:50], 1000), np.arange(50))


def test_cli_run_writes_the_report_and_report_rebuilds_it(tmp_path, capsys, make_photos):
    root = tmp_path / "photos"
    make_photos(root, n_per=4)
    out = tmp_path / "run"
    main(["run", str(root), "--out", str(out), "-f", "pixels:8", "-m", "kmeans", "-k", "3", "-q"])
    assert (out / "report.html").exists() and (out / "plotly.min.js").exists()
    assert "report: " in capsys.readouterr().out
    (out / "report.html").unlink()
    main(["report", str(out), "--map", "pca", "-q"])
    assert (out / "report.html").exists()
    out2 = tmp_path / "run2"
    main(["run", str(root), "--out", str(out2), "-f", "pixels:8", "-m", "kmeans", "-k", "3", "-q",
          "--no-report"])
    assert (out2 / "summary.json").exists() and not (out2 / "report.html").exists()


def test_a_map_cached_by_an_older_version_is_redrawn(tiny_run, monkeypatch):
    """``auto`` meant UMAP before it meant t-SNE: a map cached under another MAP_VERSION is not
    reused, one cached under the same is."""
    from imgclust.report import embed

    monkeypatch.setattr(embed, "MAP_VERSION", embed.MAP_VERSION - 1)
    build_report(tiny_run, map_method="pca")
    cached = tiny_run / "thumbs" / "map.npz"
    old = cached.stat().st_mtime_ns
    monkeypatch.undo()
    build_report(tiny_run, map_method="pca")
    new = cached.stat().st_mtime_ns
    assert new != old
    build_report(tiny_run, map_method="pca")
    assert cached.stat().st_mtime_ns == new
