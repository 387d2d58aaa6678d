"""FolderSource: scanning, failures with reasons, bounded batches and the stat fingerprint."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

import imgclust
from imgclust.errors import ConfigError, SourceError
from imgclust.sources import FolderSource, open_source


def good_and_bad(root, n_good=4, seed=0):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n_good):
        a = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
        Image.fromarray(a).save(root / f"img{i}.png")
    data = (root / "img0.png").read_bytes()
    (root / "corrupt.png").write_bytes(data[:40])
    (root / "notes.txt").write_text("not an image\n")
    return {"corrupt.png": "corrupt or truncated image", "notes.txt": "the content is text"}


def test_corrupt_and_non_image_files_are_reported_and_the_rest_read(tmp_path):
    root = tmp_path / "imgs"
    bad = good_and_bad(root)
    src = FolderSource(root)
    good = [f"img{i}.png" for i in range(4)]
    assert src.candidates() == sorted(["corrupt.png", "notes.txt", *good])
    read = [r.id for recs, _ in src.iter_batches(batch_size=2) for r in recs]
    assert read == good
    got = {os.path.basename(f.path): f.reason for f in src.failures}
    assert set(got) == set(bad)
    for name, part in bad.items():
        assert part in got[name]
    assert all(f.path == str(root / os.path.basename(f.path)) for f in src.failures)  # full path


def test_run_lists_failures_in_summary_json(tmp_path):
    root = tmp_path / "imgs"
    bad = good_and_bad(root)
    res = imgclust.run(root, tmp_path / "out", features="pixels:4", method="kmeans", k=2)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["n_images"] == 4 and summary["n_skipped"] == 2
    assert {os.path.basename(s["path"]) for s in summary["skipped"]} == set(bad)
    assert all(s["reason"] for s in summary["skipped"])
    assert len(res.ids) == 4


def test_hidden_files_and_os_litter_are_skipped_and_symlinked_folders_reported(tmp_path):
    root = tmp_path / "imgs"
    good_and_bad(root, n_good=2)
    (root / ".hidden.png").write_bytes((root / "img0.png").read_bytes())
    (root / ".git").mkdir()
    (root / ".git" / "x.png").write_bytes(b"")
    (root / "Thumbs.db").write_bytes(b"\0" * 10)
    (root / "up").symlink_to(root, target_is_directory=True)  # would loop if followed
    src = FolderSource(root)
    assert src.candidates() == ["corrupt.png", "img0.png", "img1.png", "notes.txt"]
    list(src.iter_batches())
    assert any(f.reason == "symlinked folder not followed" and f.path.endswith("up")
               for f in src.failures)


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="no files found"):
        FolderSource(tmp_path).candidates()
    with pytest.raises(SourceError, match="no such file"):
        open_source(tmp_path / "missing")


def test_labels_from_first_level_folders(tmp_path):
    for cls in ("cats", "dogs"):
        good_and_bad(tmp_path / cls, n_good=2)
    src = FolderSource(tmp_path, labels_from_folders=True)
    labels = src.labels()
    assert labels[os.path.join("cats", "img0.png")] == "cats"
    assert labels[os.path.join("dogs", "notes.txt")] == "dogs"


def test_batches_are_bounded_and_lazy(tmp_path, monkeypatch):
    root = tmp_path / "imgs"
    good_and_bad(root, n_good=10)
    src = FolderSource(root)
    calls = []
    real = src.read
    monkeypatch.setattr(src, "read", lambda i: (calls.append(i), real(i))[1])
    batches = src.iter_batches(batch_size=3, workers=2)
    recs, imgs = next(batches)
    assert len(calls) == 3 and len(imgs) <= 3  # only the first batch was decoded
    sizes = [len(imgs)] + [len(b[1]) for b in batches]
    assert max(sizes) <= 3 and sum(sizes) == 10 and len(calls) == 12


def test_fingerprint_follows_ids_sizes_and_mtimes(tmp_path):
    root = tmp_path / "imgs"
    good_and_bad(root, n_good=3)

    def fp():
        return FolderSource(root).fingerprint()

    first = fp()
    assert fp() == first  # stable
    p = root / "img1.png"
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    touched = fp()
    assert touched != first  # same bytes, newer mtime
    p.write_bytes(p.read_bytes() + b"\0")
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert fp() != touched  # size changed, mtime restored
    (root / "img1.png").rename(root / "img9.png")
    renamed = fp()
    assert renamed not in (first, touched)
    root.rename(tmp_path / "moved")
    assert FolderSource(tmp_path / "moved").fingerprint() == renamed  # the folder may move


def test_fingerprint_reads_no_file_content(tmp_path, monkeypatch):
    root = tmp_path / "imgs"
    good_and_bad(root, n_good=3)
    src = FolderSource(root)
    src.candidates()

    def no_open(*a, **kw):
        raise AssertionError("fingerprint opened a file")

    monkeypatch.setattr("builtins.open", no_open)
    monkeypatch.setattr(Image, "open", no_open)
    assert len(src.fingerprint()) == 16


def test_a_run_directory_inside_the_folder_is_not_read(tmp_path):
    root = tmp_path / "imgs"
    good_and_bad(root, n_good=3)
    run = root / "out"
    (run / "clusters" / "cluster_00").mkdir(parents=True)
    (run / "clusters" / "cluster_00" / "img0.png").write_bytes((root / "img0.png").read_bytes())
    (run / "run.json").write_text(json.dumps({"format": 2, "imgclust_version": "0.2.0",
                                              "inputs": {}, "state": "done"}))
    mine = root / "trips"  # a user's own run.json (a running app's log) is not imgclust's
    mine.mkdir()
    (mine / "run.json").write_text(json.dumps({"distance_km": 5}))
    (mine / "a.png").write_bytes((root / "img1.png").read_bytes())
    ids = FolderSource(root).candidates()
    assert not any(i.startswith("out") for i in ids)
    assert os.path.join("trips", "a.png") in ids and os.path.join("trips", "run.json") in ids


def test_an_empty_source_is_a_usage_error_not_the_working_directory():
    with pytest.raises(ConfigError, match="source is empty"):
        open_source("")


def test_the_source_is_stored_absolute(tmp_path, monkeypatch):
    good_and_bad(tmp_path / "imgs", n_good=2)
    np.savez(tmp_path / "a.npz", images=np.zeros((3, 4, 4), np.uint8))
    monkeypatch.chdir(tmp_path)
    assert FolderSource("imgs").spec == str(tmp_path / "imgs")
    assert open_source("./imgs/../imgs").spec == str(tmp_path / "imgs")
    assert open_source("a.npz").spec == str(tmp_path / "a.npz")
    assert open_source("dataset:digits").spec == "dataset:digits"
