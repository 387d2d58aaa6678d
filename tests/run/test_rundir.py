"""RunDir: only what the manifest lists is ever removed (issue 11, item 1), UTF-8 outputs."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import imgclust
from imgclust.errors import RunDirError
from imgclust.run.rundir import RUN_JSON, RunDir


@pytest.fixture
def npz(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    p = tmp_path / "a.npz"
    np.savez(p, images=rng.uniform(0, 1, (40, 6, 6)).astype(np.float32))
    return p


def test_overwrite_never_removes_a_users_files_with_imgclust_names(tmp_path, npz):
    user = tmp_path / "mine"
    (user / "thumbs").mkdir(parents=True)
    for name in ("summary.json", "report.html", "clusters.csv", "thumbs/photo.png"):
        (user / name).write_text("the user's own")
    with pytest.raises(RunDirError, match="holds no imgclust run"):
        imgclust.run(npz, user, features="pixels", method="kmeans", k=2, overwrite=True)
    for name in ("summary.json", "report.html", "clusters.csv", "thumbs/photo.png"):
        assert (user / name).read_text() == "the user's own"
    assert not (user / RUN_JSON).exists()


def test_overwrite_removes_only_listed_files(tmp_path, npz):
    out = tmp_path / "r"
    imgclust.run(npz, out, features="pixels", method="kmeans", k=2)
    (out / "notes.txt").write_text("mine")
    (out / "thumbs").mkdir(exist_ok=True)
    (out / "thumbs" / "holiday.jpg").write_text("mine too")
    imgclust.run(npz, out, features="pixels", method="kmeans", k=3, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "thumbs" / "holiday.jpg").read_text() == "mine too"
    written = json.loads((out / RUN_JSON).read_text())["written"]
    assert {"clusters.csv", "summary.json", "features.npy", "model.npz", "images.csv"} <= set(written)
    assert "notes.txt" not in written


def test_a_users_run_json_is_not_taken_for_a_run(tmp_path, npz):
    out = tmp_path / "r"
    out.mkdir()
    (out / RUN_JSON).write_text(json.dumps({"state": "done"}))
    with pytest.raises(RunDirError, match="not imgclust's"):
        imgclust.run(npz, out, features="pixels", method="kmeans", k=2, overwrite=True)
    assert json.loads((out / RUN_JSON).read_text()) == {"state": "done"}


def test_writes_before_run_json_are_refused(tmp_path):
    with pytest.raises(RunDirError, match="must be written before"):
        RunDir(tmp_path).write_json("summary.json", {})


def test_csv_of_undecodable_names_is_valid_utf8_and_the_catalogue_keeps_the_bytes(tmp_path):
    from PIL import Image

    src = tmp_path / "src"
    src.mkdir()
    raw = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes: not UTF-8
    for i, name in enumerate([raw, "b.png", "c.png", "d.png"]):
        Image.new("RGB", (8, 8), (60 * i, 0, 0)).save(src / name)
    out = tmp_path / "r"
    imgclust.run(src, out, features="pixels", method="kmeans", k=2)
    for name in ("clusters.csv", "images.csv", "summary.json", RUN_JSON):
        (out / name).read_bytes().decode("utf-8")  # strict: raises if not UTF-8
    assert "caf\\xe9.png" in (out / "clusters.csv").read_text(encoding="utf-8")
    back = imgclust.load(out)
    assert raw in back.ids and any(r.path and r.path.endswith(raw) for r in back.records)


def test_an_unknown_criterion_is_refused_before_the_run_folder_is_made(tmp_path, npz):
    from imgclust.errors import ConfigError

    with pytest.raises(ConfigError, match="criterion='bic' does not apply to kmeans"):
        imgclust.run(npz, tmp_path / "r", features="pixels", method="kmeans", criterion="bic")
    with pytest.raises(ConfigError, match="criterion='nosuch'"):
        imgclust.run(npz, tmp_path / "r", criterion="nosuch")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("content", ["{}", "[1, 2]", '{"source": "x"}'])
def test_report_on_a_damaged_summary_is_one_error(tmp_path, npz, content):
    from imgclust.report import build_report

    out = tmp_path / "r"
    imgclust.run(npz, out, features="pixels", method="kmeans", k=2)
    (out / "summary.json").write_text(content)
    with pytest.raises(RunDirError, match="damaged or not imgclust's"):
        build_report(out)
