"""``imgclust bench --supervised``: SVM and random-forest baselines on the bench's features."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from imgclust.bench import (stratified_split, supervised_report, supervised_scores,
                            supervised_summary)
from imgclust.errors import ConfigError
from imgclust.sources import ArraySource


def blobs(rng: np.random.Generator, n_per: int = 20) -> tuple[np.ndarray, list[str]]:
    """Three well-separated classes in 5 dimensions."""
    centres = np.array([[0.0] * 5, [10.0] * 5, [-10.0] + [10.0] * 4])
    X = np.vstack([c + rng.normal(0, 0.5, (n_per, 5)) for c in centres])
    return X, [name for name in ("a", "b", "c") for _ in range(n_per)]


def mislabel_one_test_image(y: list[str]) -> tuple[list[str], int, int]:
    """``y`` with its first image relabelled b, and a seed whose test set holds that image.

    Returns (labels, index, seed)."""
    noisy = ["b", *y[1:]]
    seed = next(s for s in range(100) if 0 in stratified_split(noisy, s)[1])
    return noisy, 0, seed


def test_separable_classes_are_learned_on_a_stratified_split(rng):
    X, y = blobs(rng)
    rows = supervised_scores(X, y, seed=1)
    assert [r["method"] for r in rows] == ["svm", "random-forest"]
    for r in rows:
        assert r["test_acc"] == 1.0 and r["misclassified"] == []
        assert r["n_train"] == 45 and r["n_test"] == 15 and r["classes"] == ["a", "b", "c"]
        assert np.array_equal(r["confusion"], np.diag([5, 5, 5]))  # 5 of each class held out


def test_a_mislabelled_image_is_named_with_its_id(rng):
    X, y = blobs(rng)
    ids = [f"img{i}" for i in range(len(y))]
    y_noisy, bad, seed = mislabel_one_test_image(y)  # one test image with a wrong label
    (svm,) = supervised_scores(X, y_noisy, seed=seed, models=["svm"], ids=ids)
    assert svm["misclassified"] == [{"id": f"img{bad}", "true": y_noisy[bad], "pred": y[bad]}]
    assert svm["test_acc"] == pytest.approx(1 - 1 / 15)


def test_split_is_stratified_and_seeded():
    y = ["x"] * 40 + ["y"] * 20
    train, test = stratified_split(y, seed=0)
    assert len(test) == 15 and sorted(np.asarray(y)[test]).count("y") == 5
    assert np.array_equal(test, stratified_split(y, seed=0)[1])
    assert not np.array_equal(test, stratified_split(y, seed=1)[1])


@pytest.mark.parametrize("y,match", [
    (["a"] * 5 + ["b"], "class 'b' has 1"),
    (["a"] * 6, "at least 2 classes"),
    ([c for c in "abcdefgh" for _ in range(2)], "cannot hold each of the 8 classes"),
])
def test_split_refuses_what_cannot_be_stratified(y, match):
    with pytest.raises(ConfigError, match=match):
        stratified_split(y)


def test_report_shows_confusion_and_misclassified_thumbnails(rng):
    X, y = blobs(rng)
    images = np.zeros((len(y), 6, 6), np.uint8)
    src = ArraySource("mem", images, np.array([ord(c) - 97 for c in y]), ["a", "b", "c"])
    y_noisy, _, seed = mislabel_one_test_image(y)
    rows = [{"data": "mem", "features": "f", "spec": "f", **r}
            for r in supervised_scores(X, y_noisy, seed=seed, ids=src.candidates())]
    rows.append({"data": "mem", "features": "f", "method": "kmeans", "seed": 0, "acc": 0.5,
                 "nmi": 0.4, "ari": 0.3, "k": 3, "noise": 0.0, "seconds": 0.1,
                 "k_from": "given"})  # an unsupervised row of the same features
    (summary,) = supervised_summary(rows)
    assert summary["models"]["svm"]["acc"] == rows[0]["test_acc"]
    assert [u["method"] for u in summary["unsupervised"]] == ["kmeans"]
    html = supervised_report(rows, {"mem": src})
    assert "kmeans: 0.500 ± 0.000" in html and "true \\ predicted" in html
    assert html.count('class="diag"') == 2 * 3  # one diagonal per model
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == 2  # one miss each
    assert "http" not in html  # self-contained


def bench_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "imgclust.cli", "bench", *args],
                          capture_output=True, text=True, timeout=300)


def test_cli_supervised_on_digits_writes_the_report(tmp_path):
    from sklearn.datasets import load_digits

    d = load_digits()  # the first 600 digits as an .npz, to keep the subprocess quick
    np.savez(tmp_path / "d600.npz", images=d.images[:600], labels=d.target[:600])
    out = tmp_path / "bench"
    p = bench_cli(str(tmp_path / "d600.npz"), "--supervised", "-f", "pixels", "--no-default",
                  "--out", str(out), "--markdown")
    assert p.returncode == 0, p.stderr
    assert "written to" in p.stderr and "written to" not in p.stdout  # stdout: only tables
    table = p.stdout.split("supervised baselines")[1]  # after the matrix's own table
    line = next(row for row in table.splitlines() if row.startswith("| d600.npz | pixels | "))
    cells = line.strip("| ").split(" | ")
    assert cells[2].startswith("kmeans 0.")  # the unsupervised ACC of the same features beside
    unsup, svm, forest = (float(c.split(" ± ")[0].split()[-1]) for c in cells[2:5])
    assert 0.6 < unsup < 0.9 and svm > 0.93 and forest > 0.9  # labels do far better
    data = json.loads((out / "bench.json").read_text())
    assert data["written_by"] == "imgclust bench" and data["files"] == ["supervised.html"]
    assert [r["method"] for r in data["rows"]] == ["kmeans", "svm", "random-forest"]
    html = (out / "supervised.html").read_text()
    assert html.count('class="diag"') == 2 * 10 and "data:image/png;base64," in html
    assert html.count("<figure>") == sum(len(r["misclassified"]) for r in data["rows"][1:])


def test_cli_bench_out_refuses_a_users_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    p = bench_cli("dataset:digits", "--supervised", "--out", str(tmp_path))
    assert p.returncode == 1 and "refusing" in p.stderr and p.stderr.count("\n") == 1
    assert [q.name for q in tmp_path.iterdir()] == ["notes.txt"]
