"""The command line against what a user can do to it: Ctrl-C, odd names, odd options, a full disk.

Every test runs the real ``python -m imgclust.cli`` in a subprocess, so exit codes, signals and
what reaches the terminal are the ones a shell sees.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

CLI = [sys.executable, "-m", "imgclust.cli"]
FAST = ["-f", "pixels:4", "-m", "kmeans", "-k", "2", "-q", "--no-report"]


def imgclust(*args: str, cwd: Path | None = None, timeout: float = 120
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def one_line_error(res: subprocess.CompletedProcess[str]) -> str:
    """The single ``error: ...`` line of a failed command (no traceback, nothing else)."""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    return lines[0]


# --- Ctrl-C ----------------------------------------------------------------------------------

def test_ctrl_c_exits_130_says_interrupted_and_marks_run_json(tmp_path):
    # 5,000 tiny images read one per batch: the run is still reading when SIGINT arrives
    arr = np.random.default_rng(0).integers(0, 256, (5000, 4, 4), dtype=np.uint8)
    np.savez(tmp_path / "many.npz", images=arr)
    out = tmp_path / "run"
    # SIGINT must not be inherited as ignored (as in a background shell job): Python then
    # raises KeyboardInterrupt, as it does for a user's Ctrl-C
    proc = subprocess.Popen(
        [*CLI, "run", str(tmp_path / "many.npz"), "-o", str(out), "-f", "pixels:4", "-m",
         "kmeans", "-k", "2", "-q", "--no-report", "--batch-size", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not (out / "run.json").exists() and proc.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted" and "Traceback" not in stderr
    assert json.loads((out / "run.json").read_text())["state"] == "interrupted"
    assert not [p for p in out.rglob("*.tmp")]


def test_undo_with_missing_files_exits_1(color_folder, tmp_path):
    """A command's own ``typer.Exit(1)`` reaches the shell (it was returned, and dropped)."""
    root, _ = color_folder
    out = tmp_path / "run"
    res = imgclust("run", root, "-o", out, "-f", "pixels:4", "-m", "kmeans", "-k", "3",
                   "--export", "move", "-q", "--no-report")
    assert res.returncode == 0, res.stderr
    next((out / "clusters").rglob("*.png")).unlink()  # one moved file lost
    res = imgclust("undo", out)
    assert res.returncode == 1 and "1 missing" in res.stdout, res.stdout + res.stderr


# --- names printed as they are ---------------------------------------------------------------

def test_markup_escapes_and_newlines_in_names_are_printed_as_text(tmp_path):
    from PIL import Image

    src = tmp_path / "a[" / "b]"  # typed as .../a[/b]: a closing tag to rich
    src.mkdir(parents=True)
    for name, rgb in [("one.png", (200, 0, 0)), ("two.png", (200, 0, 0)),
                      ("[red]x.png", (0, 0, 200)), (":thumbs_up:.png", (0, 0, 200))]:
        Image.new("RGB", (8, 8), rgb).save(src / name)
    (src / "bad\neverything is OK.png").write_bytes(b"x")  # skipped: not an image
    (src / "esc\x1b[31mred.png").write_bytes(b"x")
    out = tmp_path / "o[bold]ut"
    res = imgclust("run", src, "-o", out, *FAST)
    assert res.returncode == 0, res.stderr
    text = res.stdout + res.stderr
    assert "\x1b" not in text  # no raw escape sequence (nothing is coloured on a pipe)
    assert not any(line.startswith("everything is OK") for line in text.splitlines())
    assert "bad\\neverything is OK.png" in text and "esc\\x1b[31mred.png" in text
    assert "[red]x.png" in text or ":thumbs_up:.png" in text  # a representative, as named
    assert "\N{THUMBS UP SIGN}" not in text  # not an emoji code either
    assert f"written to {out}" in text and f"from {src}" in text


# --- what the source is --------------------------------------------------------------------

def test_an_empty_source_is_a_usage_error(tmp_path):
    (tmp_path / "work").mkdir()
    res = imgclust("run", "", "-o", tmp_path / "r", *FAST, cwd=tmp_path / "work")
    assert res.returncode == 2 and "source is empty" in one_line_error(res)
    assert not (tmp_path / "r").exists()
    # an empty --out is not the working directory either
    for cmd in (["run", "dataset:digits", "-o", "", *FAST],
                ["compare", "dataset:digits", "-o", "", "-m", "kmeans", "-q", "--no-report"]):
        res = imgclust(*cmd, cwd=tmp_path / "work")
        assert res.returncode == 2 and "'--out' / '-o': is empty" in one_line_error(res)
    assert not list((tmp_path / "work").iterdir())


def test_out_inside_the_source_is_not_clustered_on_the_next_run(color_folder):
    root, truth = color_folder
    out = root / "run"
    args = ["-f", "pixels:4", "-m", "kmeans", "-q", "--no-report", "--export", "copy"]
    res = imgclust("run", root, "-o", out, *args, "-k", "3")
    assert res.returncode == 0, res.stderr
    again = imgclust("run", root, "-o", out, *args, "-k", "3")  # resumed: the same inputs
    assert again.returncode == 0, again.stderr
    other = imgclust("run", root, "-o", out, *args, "-k", "2", "--overwrite")
    assert other.returncode == 0, other.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_images"] == len(truth) and summary["n_skipped"] == 0


def test_a_relative_source_is_found_by_report_from_another_directory(tmp_path, make_colors):
    make_colors(tmp_path / "work" / "imgs", n_per=4, size=8)
    (tmp_path / "elsewhere").mkdir()
    res = imgclust("run", "imgs", "-o", "../run", "-f", "pixels:4", "-m", "kmeans", "-k", "3",
                   "-q", "--no-report", cwd=tmp_path / "work")
    assert res.returncode == 0, res.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["source"] == str(tmp_path / "work" / "imgs")
    rep = imgclust("report", "../run", "-q", cwd=tmp_path / "elsewhere")
    assert rep.returncode == 0, rep.stderr
    html = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "cannot be shown" not in html and "source unavailable" not in html


@pytest.mark.parametrize("make,message", [
    (lambda p: np.savez(p, images=np.where(np.eye(4)[None], np.inf, 0.5).repeat(3, 0)),
     "12 pixel value(s) are NaN or infinite, in 3 of 3 images"),
    (lambda p: p.write_bytes(b""), "not an .npz archive"),  # was EOFError: 'aborted', exit 130
])
def test_a_bad_npz_is_one_line_exit_1(tmp_path, make, message):
    make(tmp_path / "x.npz")
    res = imgclust("run", tmp_path / "x.npz", "-o", tmp_path / "r", *FAST)
    assert res.returncode == 1 and message in one_line_error(res)
    assert not (tmp_path / "r").exists()


# --- options checked before anything runs ------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["run", "dataset:digits", "-o", "{out}", *FAST, "--batch-size", "0"], "--batch-size"),
    (["run", "dataset:digits", "-o", "{out}", *FAST, "--batch-size", "-1"], "--batch-size"),
    (["run", "dataset:digits", "-o", "{out}", *FAST, "--seed", "-1"], "--seed"),
    (["run", "dataset:digits", "-o", "{out}", "-f", "pixels:4", "-m", "kmeans", "-k", "0",
      "-q", "--no-report"], "k='0' must be 'auto' or a positive integer"),
    (["run", "dataset:digits", "-o", "{out}", *FAST, "--k-range", "9:3"], "--k-range '9:3'"),
    (["run", "dataset:digits", "-o", "{out}", *FAST, "--k-range", "1:3"], "--k-range '1:3'"),
    (["compare", "dataset:digits", "-o", "{out}", "-f", "pixels:4", "-k", "2", "-m", "kmeans",
      "-m", "kmeans", "-q", "--no-report"], "'kmeans' is given twice"),
    (["bench", "-f", "pixels:4", "-m", "kmeans", "--no-default", "-k", "abc"], "-k 'abc'"),
    (["bench", "-f", "pixels:4", "-m", "kmeans", "--no-default", "-k", "0"], "-k '0'"),
    (["bench", "-f", "pixels:4", "-m", "kmeans", "--no-default", "--seeds", "0"], "--seeds"),
])
def test_bad_options_are_one_line_usage_errors(tmp_path, args, message):
    out = tmp_path / "r"
    res = imgclust(*[a.format(out=out) for a in args])
    assert res.returncode == 2 and message in one_line_error(res)
    assert not out.exists()


# --- where the run is written -----------------------------------------------------------------

@pytest.mark.parametrize("where", ["/proc/imgclust-run", "{tmp}/a-file/run"])
def test_an_out_that_cannot_be_made_is_one_line_exit_1(tmp_path, where):
    (tmp_path / "a-file").write_text("mine")
    out = where.format(tmp=tmp_path)
    res = imgclust("run", "dataset:digits", "-o", out, *FAST)
    assert res.returncode == 1 and out in one_line_error(res)
    assert not Path(out).exists() and (tmp_path / "a-file").read_text() == "mine"


@pytest.fixture
def tmpfs(tmp_path):
    """A tmpfs of 200 KB mounted on a folder (root only), made read-only on request."""
    mounted = []

    def mount(name: str, options: str) -> Path:
        p = tmp_path / name
        p.mkdir()
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(p)],
                             capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
        mounted.append(p)
        return p

    yield mount
    for p in mounted:
        subprocess.run(["umount", str(p)], check=False)


def test_a_read_only_out_is_one_line_exit_1(tmpfs):
    ro = tmpfs("ro", "ro,size=200k")
    res = imgclust("run", "dataset:digits", "-o", ro / "run", *FAST)
    assert res.returncode == 1 and "Read-only file system" in one_line_error(res)
    assert not list(ro.iterdir())


def test_a_full_disk_is_one_line_exit_1_and_leaves_no_temporary_file(tmpfs):
    small = tmpfs("small", "size=200k")
    res = imgclust("run", "dataset:digits", "-o", small / "run", "-f", "pixels:8", "-m",
                   "kmeans", "-k", "3", "-q", "--no-report")
    assert res.returncode == 1 and "No space left on device" in one_line_error(res)
    assert not [p for p in small.rglob("*") if p.name.endswith(".tmp")]


# --- a damaged run directory ------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["truncated summary.json", "a bad clusters.csv row"])
def test_report_on_a_damaged_run_is_one_line_exit_1(tmp_path, damage):
    out = tmp_path / "run"
    res = imgclust("run", "dataset:digits", "-o", out, *FAST)
    assert res.returncode == 0, res.stderr
    if damage == "truncated summary.json":
        (out / "summary.json").write_bytes((out / "summary.json").read_bytes()[:100])
    else:
        with open(out / "clusters.csv", "a") as f:
            f.write("zz,not-a-number,x,1\n")
    res = imgclust("report", out, "-q")
    assert res.returncode == 1 and str(out) in one_line_error(res)


# --- what the help and the summary line say ----------------------------------------------------

def test_help_has_no_type_noise_and_names_the_defaults():
    run_help = imgclust("run", "--help")
    bench_help = imgclust("bench", "--help")
    assert run_help.returncode == bench_help.returncode == 0
    assert "<bool>" not in run_help.stdout + bench_help.stdout
    assert "--no-overwrite" not in run_help.stdout
    assert "--default / --no-default" in bench_help.stdout and "no-no-default" not in bench_help.stdout
    assert "Default: the method's first: silhouette for kmeans" in " ".join(run_help.stdout.split())


def test_every_compare_option_is_documented():
    import typer

    from imgclust.cli import app

    compare = typer.main.get_command(app).commands["compare"]
    undocumented = [p.name for p in compare.params if not getattr(p, "help", None)]
    assert undocumented == []


@pytest.mark.parametrize("args,story", [
    (["-m", "hdbscan"], "(found by hdbscan)"),
    (["-m", "hdbscan", "-k", "5"], "(found by hdbscan; -k 5 does not apply)"),
    (["-m", "kmeans", "-k", "5"], "clusters: 5 (k given)"),
])
def test_the_summary_line_says_where_k_came_from(tmp_path, args, story):
    res = imgclust("run", "dataset:digits", "-o", tmp_path / "r", "-f", "pixels:4", *args, "-q",
                   "--no-report")
    assert res.returncode == 0, res.stderr
    line = next(x for x in res.stdout.splitlines() if x.startswith("method:"))
    assert story in line and "(k none)" not in line and "chosen by" not in line
