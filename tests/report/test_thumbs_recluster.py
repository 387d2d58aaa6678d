"""Thumbnails are keyed on the images, not the clusters: a new k remakes only the mean images
(issue 10: ``imgclust recluster`` rebuilt every thumbnail)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgclust.report import thumbs
from imgclust.report.thumbs import make_thumbnails, thumb_name


class Folder:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.reads = 0

    def read(self, image_id: str):
        from imgclust.sources.decode import decode_image

        self.reads += 1
        return decode_image(str(self.root / image_id), image_id)


def _ids(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))


def _write_clusters(run_dir: Path, ids, labels) -> None:
    rows = ["id,cluster,distance,is_representative"] + [f"{i},{c},0.0,0" for i, c in
                                                         zip(ids, labels)]
    (run_dir / "clusters.csv").write_text("\n".join(rows) + "\n")


@pytest.mark.parametrize("size", [40, 12])  # one JPEG per image, and PNG sheets
def test_new_clusters_reuse_the_thumbnails_and_remake_the_means(tmp_path, make_colors, size):
    root = tmp_path / "imgs"
    make_colors(root, n_per=4, size=size)
    ids = _ids(root)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    three = np.repeat([0, 1, 2], 4)
    _write_clusters(run_dir, ids, three)
    key = thumbs.cache_key(run_dir, str(root))
    src = Folder(root)
    first = make_thumbnails(src, ids, three, run_dir, key)
    assert sorted(first.means) == [0, 1, 2] and src.reads > 0
    mean_before = np.asarray(Image.open(run_dir / first.means[0]).convert("RGB"), np.float64)

    two = np.array([0] * 8 + [1] * 4)  # clusters 0 and 1 of before, merged
    _write_clusters(run_dir, ids, two)
    assert thumbs.cache_key(run_dir, str(root)) == key  # the images did not change
    assert thumbs.load_cached(run_dir, key) is None  # but its means are of the old clusters
    files = {p: p.stat().st_mtime_ns for p in (run_dir / "thumbs").rglob("*")
             if p.is_file() and "mean_" not in p.name and p.name != "manifest.json"}
    src.reads = 0
    second = make_thumbnails(src, ids, two, run_dir, key)
    assert src.reads == 0  # no image decoded again
    assert {p: p.stat().st_mtime_ns for p in files} == files  # thumbnails untouched
    assert sorted(second.means) == [0, 1] and not (run_dir / "thumbs/mean_2.png").exists()
    merged = np.asarray(Image.open(run_dir / second.means[0]).convert("RGB"), np.float64)
    assert np.abs(merged - mean_before).mean() > 5  # colours 0 and 1 averaged together
    m = json.loads((run_dir / "thumbs/manifest.json").read_text())
    assert m["state"] == "done" and m["clusters"] == [0, 1] and m["counts"] == {"0": 8, "1": 4}
    assert thumbs.load_cached(run_dir, key) is not None  # now cached for the new clusters
    # back to three: the means match the first build's (from the thumbnails, within JPEG loss)
    _write_clusters(run_dir, ids, three)
    third = make_thumbnails(src, ids, three, run_dir, key)
    again = np.asarray(Image.open(run_dir / third.means[0]).convert("RGB"), np.float64)
    assert np.abs(again - mean_before).mean() <= 4 and src.reads == 0


def test_a_users_file_at_a_new_mean_name_is_refused_and_kept(tmp_path, make_colors):
    root = tmp_path / "imgs"
    make_colors(root, n_per=4, size=40)
    ids = _ids(root)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    make_thumbnails(Folder(root), ids, np.repeat([0, 1, 2], 4), run_dir, "k")
    mine = run_dir / "thumbs/mean_5.png"
    mine.write_bytes(b"mine")
    from imgclust.errors import ImgclustError

    with pytest.raises(ImgclustError, match="mean_5.png: a file imgclust did not write"):
        make_thumbnails(Folder(root), ids, np.repeat([5, 1, 2], 4), run_dir, "k")
    assert mine.read_bytes() == b"mine" and (run_dir / thumb_name(0)).is_file()


def test_cli_recluster_keeps_the_thumbnails(tmp_path, make_colors):
    root = tmp_path / "imgs"
    make_colors(root, n_per=4, size=40)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "imgclust.cli"]
    r = subprocess.run(cmd + ["run", str(root), "-f", "pixels:8", "-m", "kmeans", "-k", "3",
                              "--map", "pca", "--out", str(out), "-q"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    jpg = out / thumb_name(0)
    stamp = jpg.stat().st_mtime_ns
    r = subprocess.run(cmd + ["recluster", str(out), "-k", "2", "-q"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert jpg.stat().st_mtime_ns == stamp
    m = json.loads((out / "thumbs/manifest.json").read_text())
    assert len(m["clusters"]) == 2 and m["state"] == "done"


def test_folder_thumbnails_decoded_small(tmp_path, monkeypatch):
    """A large JPEG is decoded for its thumbnail at the draft scale a 64-px thumbnail needs."""
    from PIL import JpegImagePlugin

    from imgclust.sources.folder import FolderSource

    root = tmp_path / "imgs"
    root.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).resize(
        (2400, 1800)).save(root / "big.jpg", quality=80)
    seen = []
    real = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size, *a, **kw):
        out = real(self, mode, size, *a, **kw)
        seen.append(self.size)
        return out

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    src = FolderSource(root)
    ts = make_thumbnails(src, ["big.jpg"], np.array([0]), run_dir, "k")
    assert not ts.missing and seen[0] == (300, 225)  # 1/8 scale, not 1/4 (for 512 px)
    assert src.min_side is None  # the caller's source is unchanged
    with Image.open(run_dir / thumb_name(0)) as im:
        assert im.size == (64, 48)
