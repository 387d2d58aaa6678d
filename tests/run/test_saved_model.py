"""The saved model: load -> predict in another working directory, the numbering of clusters.csv,
unknown images, refusing older formats and untrusted types (issue 10)."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import imgclust
from imgclust.errors import RunDirError
from imgclust.run.rundir import MODEL, RUN_JSON


@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory) -> Path:
    from sklearn.datasets import load_digits

    d = load_digits()
    p = tmp_path_factory.mktemp("data") / "digits300.npz"
    np.savez(p, images=d.images[:300].astype(np.float32), labels=d.target[:300])
    return p


@pytest.fixture(scope="module")
def spectral_run(tmp_path_factory, digits_npz) -> Path:
    """The glyph default (knn-spectral, whose fitted object has no predict of its own)."""
    out = tmp_path_factory.mktemp("runs") / "r"
    imgclust.run(digits_npz, out, k=10)
    return out


def _clusters_csv(out: Path) -> list[int]:
    with open(out / "clusters.csv", newline="") as f:
        return [int(r["cluster"]) for r in csv.DictReader(f)]


def test_load_in_another_directory_predicts_clusters_csv_exactly(spectral_run, digits_npz,
                                                                  tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # load and predict from elsewhere: paths are stored absolute
    res = imgclust.load(spectral_run)
    assert res.labels_.tolist() == _clusters_csv(spectral_run)
    a = res.predict(str(digits_npz))
    assert a.labels.tolist() == _clusters_csv(spectral_run)
    assert not a.unknown.any()


def test_round_trip_keeps_labels_steps_and_selection(tmp_path, digits_npz):
    live = imgclust.run(digits_npz, tmp_path / "r", features="pixels,pca:20", method="kmeans", k=4)
    back = imgclust.load(tmp_path / "r")
    assert back.labels_.tolist() == live.labels_.tolist()
    np.testing.assert_array_equal(back.features_.X, live.features_.X)
    assert [s for s, _ in back.steps_] == [s for s, _ in live.steps_]
    assert back.selection.criterion == "given" and back.clustering.n_clusters == 4
    assert type(back.clusterer_).__name__ == "KMeans"
    # the reloaded fitted steps give what the live ones give on new images
    imgs = np.random.default_rng(0).uniform(0, 16, size=(5, 8, 8)).astype(np.float32)
    assert back.predict(imgs).labels.tolist() == live.predict(imgs).labels.tolist()


def test_umap_run_assigns_in_the_space_before_umap(tmp_path, digits_npz):
    pytest.importorskip("umap")
    res = imgclust.run(digits_npz, tmp_path / "r", features="pixels,pca:20,umap:5",
                       method="kmeans", k=5)
    assert (tmp_path / "r" / "assign-features.npy").exists()
    back = imgclust.load(tmp_path / "r")
    assert [s for s, _ in back.steps_] == ["pixels", "pca:20"]  # UMAP is not saved
    assert back.features_.steps == ("pixels", "pca:20", "umap:5")
    assert back.predict(str(digits_npz)).labels.tolist() == res.labels_.tolist()
    re = imgclust.recluster(tmp_path / "r", k=3)  # the saved model keeps every step's spec
    again = imgclust.load(tmp_path / "r")
    assert again.features_.steps == ("pixels", "pca:20", "umap:5")
    assert again.predict(str(digits_npz)).labels.tolist() == re.labels_.tolist()


def test_images_unlike_any_cluster_are_unknown(tmp_path):
    rng = np.random.default_rng(0)
    # two tight groups of 8x8 images: dark left half / dark right half
    base = np.zeros((2, 8, 8), np.float32)
    base[0, :, :4] = 16
    base[1, :, 4:] = 16
    imgs = np.concatenate([np.clip(b + rng.normal(0, 1, (60, 8, 8)), 0, 16) for b in base])
    np.savez(tmp_path / "two.npz", images=imgs.astype(np.float32))
    imgclust.run(tmp_path / "two.npz", tmp_path / "r", features="pixels", method="kmeans", k=2)
    res = imgclust.load(tmp_path / "r")
    near = np.clip(base[[0, 1]] + rng.normal(0, 1, (2, 8, 8)), 0, 16)
    far = np.full((3, 8, 8), 8.0, np.float32)
    far[:, ::2, ::2] = 16  # a checkerboard: neither group
    a = res.predict(np.concatenate([near, far]).astype(np.float32))
    assert a.unknown.tolist() == [False, False, True, True, True]
    assert a.labels[2:].tolist() == [-1, -1, -1]
    assert a.labels[0] != a.labels[1]
    assert a.labels[0] == res.labels_[0] and a.labels[1] == res.labels_[-1]
    assert "unknown" in a.reason[2]


def test_older_format_is_refused_with_a_message(tmp_path, digits_npz):
    imgclust.run(digits_npz, tmp_path / "r", features="pixels", method="kmeans", k=3)
    m = json.loads((tmp_path / "r" / RUN_JSON).read_text())
    m["format"] = 1
    (tmp_path / "r" / RUN_JSON).write_text(json.dumps(m))
    with pytest.raises(RunDirError, match="format 1"):
        imgclust.load(tmp_path / "r")
    with pytest.raises(RunDirError, match="older imgclust"):
        imgclust.run(digits_npz, tmp_path / "r", features="pixels", method="kmeans", k=4,
                     overwrite=True)


@pytest.mark.parametrize("cls", ["collections:Counter", "os:system", "builtins:eval",
                                 "sklearn.utils:all_estimators", "imgclust.cli:main"])
def test_a_model_file_naming_other_classes_is_refused_without_running_them(tmp_path, digits_npz,
                                                                           cls):
    import io
    import zipfile

    imgclust.run(digits_npz, tmp_path / "r", features="pixels", method="kmeans", k=3)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:  # what an attacker could write by hand
        z.writestr("tree.json", json.dumps({"t": "dict", "v": {
            "format": 1, "steps": {"t": "obj", "cls": cls, "state": {"t": "dict", "v": {}}}}}))
    (tmp_path / "r" / MODEL).write_bytes(buf.getvalue())
    with pytest.raises(RunDirError, match="refusing to load"):
        imgclust.load(tmp_path / "r")


def test_saving_refuses_a_function_rather_than_pickling_it():
    from imgclust.run._safe_state import UnsafeStateError, dumps

    with pytest.raises(UnsafeStateError, match="not data"):
        dumps({"f": len})


def test_a_damaged_model_file_is_one_error(tmp_path, digits_npz):
    imgclust.run(digits_npz, tmp_path / "r", features="pixels", method="kmeans", k=3)
    (tmp_path / "r" / MODEL).write_bytes(b"not a zip")
    with pytest.raises(RunDirError, match="damaged model file"):
        imgclust.load(tmp_path / "r")


def test_load_refuses_a_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(RunDirError, match="holds no imgclust run"):
        imgclust.load(tmp_path)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "imgclust.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_cli_assign_writes_clusters_and_unknowns(tmp_path):
    rng = np.random.default_rng(1)
    imgs = np.zeros((80, 8, 8), np.uint8)
    imgs[:40, :, :4] = 255  # two groups: bright left half, bright right half
    imgs[40:, :, 4:] = 255
    noisy = np.clip(imgs + rng.normal(0, 12, imgs.shape), 0, 255).astype(np.uint8)
    np.savez(tmp_path / "two.npz", images=noisy)
    run = tmp_path / "r"
    imgclust.run(tmp_path / "two.npz", run, features="pixels", method="kmeans", k=2)
    folder = tmp_path / "new"
    folder.mkdir()
    Image.fromarray(noisy[3], mode="L").save(folder / "left.png")
    Image.fromarray(noisy[50], mode="L").save(folder / "right.png")
    Image.fromarray((np.indices((8, 8)).sum(0) % 2 * 255).astype(np.uint8), mode="L").save(
        folder / "checker.png")
    r = _cli("assign", str(run), str(folder), "--out", str(tmp_path / "a"), "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "a" / "assignments.csv", newline="") as f:
        rows = {row["id"]: row for row in csv.DictReader(f)}
    clusters = _clusters_csv(run)
    assert rows["left.png"]["cluster"] == str(clusters[3]) and rows["left.png"]["unknown"] == "0"
    assert rows["right.png"]["cluster"] == str(clusters[50])
    assert rows["checker.png"]["unknown"] == "1" and rows["checker.png"]["cluster"] == "-1"
    assert "3 images assigned: 2 to clusters, 1 unknown" in r.stdout


def test_cli_assign_to_a_non_empty_out_is_refused(tmp_path, spectral_run, digits_npz):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "mine.txt").write_text("keep")
    r = _cli("assign", str(spectral_run), str(digits_npz), "--out", str(tmp_path / "a"), "-q",
             cwd=tmp_path)
    assert r.returncode == 1 and "not empty" in r.stderr
    assert (tmp_path / "a" / "mine.txt").read_text() == "keep"
    assert "Traceback" not in r.stderr


def test_safe_state_round_trips_data_of_every_kind():
    from pathlib import Path

    from scipy import sparse

    from imgclust.run._safe_state import dumps, loads

    obj = {"a": [1, 2.5, float("inf"), None, True, "x"], "t": (1, np.float32(2.0)),
           3: {"nested": np.arange(6).reshape(2, 3)}, "p": Path("/tmp/m.onnx"),
           "s": sparse.csr_matrix(np.eye(3)), "d": np.dtype("float32"), "ty": np.int64}
    back = loads(dumps(obj))
    assert back["a"][:2] == [1, 2.5] and back["a"][2] == float("inf") and back["a"][3:] == [None, True, "x"]
    assert back["t"] == (1, np.float32(2.0)) and isinstance(back["t"], tuple)
    np.testing.assert_array_equal(back[3]["nested"], np.arange(6).reshape(2, 3))
    assert back["p"] == Path("/tmp/m.onnx") and back["d"] == np.float32 and back["ty"] is np.int64
    assert (back["s"] != sparse.csr_matrix(np.eye(3))).nnz == 0
