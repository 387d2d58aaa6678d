"""Exporting labels: the CSV, the folder layouts, never overwriting, arrays as PNGs."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgclust.errors import ConfigError
from imgclust.io import KILL_ENV
from imgclust.label import LabelError, LabelStore
from imgclust.label.export import IMAGEFOLDER_EXTENSIONS, export_labels, folder_names, safe_name

from label_fixtures import array_run, folder_run


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def labelled(tmp_path: Path) -> tuple[Path, Path]:
    run, images = folder_run(tmp_path)
    s = LabelStore(run)
    s.label(["dark/dark0.png", "dark/dark1.png"], "dark/ish")
    s.label(["light/light0.gif", "light/light1.png"], "light")
    s.label(["dark/dark2.png"], "light", source="propagated", confidence=0.95)
    s.label(["dark/dark3.png"], "light", source="propagated", confidence=0.5)
    s.mark_not_of_interest(["light/light1.png"])
    return run, images


def test_csv_holds_id_path_label_source_confidence(labelled, tmp_path: Path) -> None:
    run, images = labelled
    res = export_labels(run, tmp_path / "labels.csv")
    rows = read_csv(tmp_path / "labels.csv")
    assert [r["id"] for r in rows] == ["dark/dark0.png", "dark/dark1.png", "light/light0.gif"]
    assert rows[0] == {"id": "dark/dark0.png", "path": str(images / "dark" / "dark0.png"),
                       "label": "dark/ish", "source": "human", "confidence": ""}
    assert res["labels"] == 3 and res["by_label"] == {"dark/ish": 2, "light": 1}


def test_csv_with_propagated_labels_and_min_confidence(labelled, tmp_path: Path) -> None:
    run, _ = labelled
    export_labels(run, tmp_path / "a.csv", sources=("human", "propagated"), min_confidence=0.9)
    rows = {r["id"]: r for r in read_csv(tmp_path / "a.csv")}
    assert set(rows) == {"dark/dark0.png", "dark/dark1.png", "light/light0.gif",
                         "dark/dark2.png"}  # 0.5 left out; not-of-interest left out
    assert rows["dark/dark2.png"]["source"] == "propagated"
    assert float(rows["dark/dark2.png"]["confidence"]) == 0.95


def test_folders_are_byte_copies_under_their_own_names(labelled, tmp_path: Path) -> None:
    run, images = labelled
    out = tmp_path / "out"
    res = export_labels(run, out, format="folders")
    assert files(out) == ["dark_ish/dark0.png", "dark_ish/dark1.png", "labels.csv",
                          "light/light0.gif"]
    assert (out / "light" / "light0.gif").read_bytes() == (images / "light" / "light0.gif"
                                                            ).read_bytes()
    assert res["files"] == 3 and res["failed"] == []
    rows = read_csv(out / "labels.csv")
    assert {r["file"]: r["label"] for r in rows}["dark_ish/dark0.png"] == "dark/ish"


def test_imagefolder_layout_loads_as_torchvision_would(labelled, tmp_path: Path) -> None:
    run, images = labelled
    out = tmp_path / "out"
    export_labels(run, out, format="imagefolder", sources=("human", "propagated"),
                  min_confidence=0.9)
    # torchvision.datasets.ImageFolder: classes = sorted subfolders, samples = files with
    # IMG_EXTENSIONS below each
    classes = sorted(e.name for e in os.scandir(out) if e.is_dir())
    assert classes == ["dark_ish", "light"]
    samples = sorted((c, f.name) for c in classes for f in (out / c).iterdir()
                     if f.suffix.lower() in IMAGEFOLDER_EXTENSIONS)
    assert samples == [("dark_ish", "dark0.png"), ("dark_ish", "dark1.png"),
                       ("light", "dark2.png"), ("light", "light0.png")]  # the GIF as PNG
    with Image.open(out / "light" / "light0.png") as im:
        assert im.format == "PNG" and im.size == (6, 6)
    assert all(not n.startswith(".") for n in files(out))  # no temporary file left


def test_array_sources_are_written_as_pngs(tmp_path: Path) -> None:
    run = array_run(tmp_path)
    s = LabelStore(run)
    s.label(["0", "1"], "dark")
    s.label(["12"], "light")
    export_labels(run, tmp_path / "out", format="folders")
    assert files(tmp_path / "out") == ["dark/000000.png", "dark/000001.png", "labels.csv",
                                       "light/000012.png"]
    a = np.asarray(Image.open(tmp_path / "out" / "light" / "000012.png"))
    assert a.shape == (8, 8) and int(a[0, 0]) == 230
    export_labels(run, tmp_path / "a.csv")
    assert [r["path"] for r in read_csv(tmp_path / "a.csv")] == ["", "", ""]


def test_nothing_is_ever_overwritten(labelled, tmp_path: Path) -> None:
    run, _ = labelled
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(LabelError, match="not empty"):
        export_labels(run, out, format="folders")
    assert files(out) == ["mine.txt"]
    (tmp_path / "x.csv").write_text("mine")
    with pytest.raises(LabelError, match="exists; imgclust does not overwrite"):
        export_labels(run, tmp_path / "x.csv")
    assert (tmp_path / "x.csv").read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    export_labels(run, empty, format="folders")  # an empty folder is fine
    assert (empty / "labels.csv").exists()


def test_a_file_gone_since_the_run_is_reported_and_the_rest_exported(labelled,
                                                                     tmp_path: Path) -> None:
    run, images = labelled
    (images / "dark" / "dark1.png").unlink()
    res = export_labels(run, tmp_path / "out", format="imagefolder")
    assert [i for i, _ in res["failed"]] == ["dark/dark1.png"]
    assert res["files"] == 2
    assert files(tmp_path / "out") == ["dark_ish/dark0.png", "labels.csv", "light/light0.png"]


def test_a_kill_mid_export_leaves_no_half_file(labelled, tmp_path: Path) -> None:
    run, _ = labelled
    out = tmp_path / "out"
    code = ("import sys; from imgclust.label.export import export_labels; "
            "export_labels(sys.argv[1], sys.argv[2], format='folders')")
    p = subprocess.run([sys.executable, "-c", code, str(run), str(out)], capture_output=True,
                       env=dict(os.environ, **{KILL_ENV: "label-export:1"}), timeout=60)
    assert p.returncode == -signal.SIGKILL
    assert files(out) == ["dark_ish/dark0.png", "dark_ish/dark1.png"]  # whole files only


def test_nothing_to_export_and_bad_arguments(labelled, tmp_path: Path) -> None:
    run, _ = labelled
    with pytest.raises(LabelError, match="no labels from model to export"):
        export_labels(run, tmp_path / "a.csv", sources=("model",))
    with pytest.raises(ConfigError, match="export format 'zip'; valid: csv, folders"):
        export_labels(run, tmp_path / "a.csv", format="zip")
    with pytest.raises(ConfigError, match="confidence=2.0 must be between 0 and 1"):
        export_labels(run, tmp_path / "a.csv", min_confidence=2)
    assert not (tmp_path / "a.csv").exists()


def test_safe_and_distinct_folder_names() -> None:
    assert safe_name("a/b") == "a_b"
    assert safe_name("..") == "_."
    assert safe_name("  ") == "_"
    assert safe_name("CON", portable=True) == "_CON"
    assert safe_name("x. ", portable=True) == "x"
    assert safe_name("a?b", portable=False) == "a?b"
    assert len(safe_name("é" * 300).encode()) <= 200
    names = folder_names(["Cat", "cat", "a/b", "a_b", "labels.csv"], portable=True)
    assert len({n.casefold() for n in names.values()}) == 5
    assert names["labels.csv"] != "labels.csv"


def test_import_labels_reads_a_bom_and_keeps_the_last_row_per_id(labelled, tmp_path: Path) -> None:
    from imgclust.label.export import import_labels

    run, _ = labelled
    f = tmp_path / "in.csv"
    f.write_bytes("\ufeffid,label\ndark/dark0.png,first\ndark/dark0.png, second \n".encode())
    res = import_labels(run, f)
    assert res["labels"] == 1 and res["by_label"] == {"second": 1}
    assert LabelStore(run).current_labels()["dark/dark0.png"] == ("second", "human", None)


@pytest.mark.parametrize("content,match", [
    (b"id,label\ndark/dark0.png,\n", "line 2 .* has no label; nothing imported"),
    (b"id,label\n", "no labels"),
    (b"", "needs a header"),
    (b"id,label\ndark/dark0.png,\xff\n", "not UTF-8"),
])
def test_import_labels_refuses_a_bad_file(labelled, tmp_path: Path, content: bytes,
                                          match: str) -> None:
    from imgclust.label.export import import_labels

    run, _ = labelled
    before = LabelStore(run).current_labels()
    f = tmp_path / "in.csv"
    f.write_bytes(content)
    with pytest.raises(LabelError, match=match):
        import_labels(run, f)
    assert LabelStore(run).current_labels() == before


def test_on_a_run_written_by_the_pipeline(tmp_path: Path) -> None:
    import imgclust.pipeline as pipeline
    from imgclust.label.propagate import propagate_run

    array_run(tmp_path)  # writes tmp_path/arr.npz (and a hand-made run we do not use)
    run = tmp_path / "real"
    pipeline.run(str(tmp_path / "arr.npz"), out=run, features="pixels", method="kmeans", k=2)
    s = LabelStore(run)
    s.label(["0"], "dark")
    s.label(["15"], "light")
    assert propagate_run(run, "spread")["labelled"] == 18
    res = export_labels(run, tmp_path / "out", format="imagefolder", sources=("human",
                                                                              "propagated"))
    assert res["by_label"] == {"dark": 10, "light": 10} and res["files"] == 20


def test_a_file_name_at_the_length_limit_is_exported(tmp_path: Path) -> None:
    """A 251-byte name: the copy's temporary name must fit NAME_MAX too (it was .NAME.part)."""
    import imgclust

    src = tmp_path / "src"
    src.mkdir()
    long_name = "a" * 247 + ".png"
    for i, name in enumerate([long_name, "b.png", "c.png", "d.png"]):
        Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(src / name)
    run = tmp_path / "r"
    imgclust.run(src, run, features="pixels", method="kmeans", k=2)
    LabelStore(run).label([long_name, "b.png"], "red")
    export_labels(run, tmp_path / "out", format="folders")
    assert (tmp_path / "out" / "red" / long_name).read_bytes() == (src / long_name).read_bytes()
    assert not any(p.name.endswith(".part") for p in (tmp_path / "out").rglob("*"))
