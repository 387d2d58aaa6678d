import os
import subprocess
import sys

import pytest

from imgclust.cluster import registry as creg
from imgclust.errors import ConfigError
from imgclust.features import registry as freg
from imgclust.registry import Registry, parse_spec


def test_parse_spec_positional_and_keywords():
    assert parse_spec("pca:50:whiten=true") == ("pca", {"_pos": 50, "whiten": True})
    assert parse_spec("gmm:covariance_type=diag") == ("gmm", {"covariance_type": "diag"})
    assert parse_spec("pca:0.9") == ("pca", {"_pos": 0.9})
    with pytest.raises(ConfigError, match="more than one positional"):
        parse_spec("pca:1:2")


def test_duplicate_name_is_refused():
    r: Registry = Registry("thing")
    r.add("a", dict)
    with pytest.raises(ValueError, match="already registered"):
        r.add("a", dict)


def test_unknown_name_lists_valid_names():
    creg.load_builtins()
    with pytest.raises(ConfigError, match="valid names: .*kmeans.*gmm"):
        creg.create("kmeanz")


def test_every_listed_method_and_feature_is_registered():
    creg.load_builtins()
    freg.load_builtins()
    assert {"kmeans", "minibatch-kmeans", "agglomerative", "dbscan", "hdbscan", "spectral",
            "gmm", "bgmm"} <= set(creg.names())
    assert {"pixels", "pca", "umap", "tsne"} <= set(freg.names())


def test_bad_parameter_is_a_config_error():
    creg.load_builtins()
    with pytest.raises(ConfigError, match="bad parameters for clustering method 'kmeans'"):
        creg.create("kmeans:no_such_param=1")


BAD_SPECS = [
    (freg, "pixels:0", "size=0 must be a positive integer"),
    (freg, "pixels:abc", "size='abc' must be a positive integer"),
    (freg, "pixels:100000", "size=100000 is more than 1024 pixels a side"),
    (freg, "pixels:gray=maybe", "gray='maybe'"),
    (freg, "pca:0", "n_components=0 must be at least 1"),
    (freg, "pca:-1", "n_components=-1 must be at least 1"),
    (freg, "pca:whiten=sometimes", "'whiten' parameter"),
    (freg, "hog:0", "pixels_per_cell=0"),
    (freg, "resize:abc", "side='abc'"),
    (freg, "deskew:image_shape=big", "image_shape='big'"),
    (creg, "kmeans:n_init=abc", "'n_init' parameter of KMeans .* Got 'abc'"),
    (creg, "kmeans:0", "'n_clusters' parameter of KMeans"),
    (creg, "dbscan:eps=-1", "'eps' parameter of DBSCAN .* Got -1"),
    (creg, "kmeans:foo=1", "foo"),
    (creg, "gmm:covariance_type=round", "'covariance_type'"),
    (creg, "knn-spectral:k_rule=gap", "k_rule='gap'"),
]


@pytest.mark.parametrize("reg,spec,match", BAD_SPECS, ids=[s for _, s, _ in BAD_SPECS])
def test_check_refuses_a_bad_spec_in_one_line_without_data(reg, spec, match):
    reg.load_builtins()
    with pytest.raises(ConfigError, match=match) as info:
        reg.check(spec)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("bad parameters for ")
    assert repr(spec.split(":")[0]) in msg


def test_check_accepts_every_default_and_the_auto_specs():
    import importlib.util

    from imgclust.errors import MissingExtraError

    creg.load_builtins()
    freg.load_builtins()
    needs = {"cnn": "onnxruntime", "umap": "umap", "autoencoder": "torch"}
    for reg in (freg, creg):
        for name in reg.names():
            if name == "onnx":  # a user's model file has no default: refused, with the syntax
                with pytest.raises(ConfigError, match="onnx:PATH"):
                    reg.check(name)
            elif name in needs and importlib.util.find_spec(needs[name]) is None:
                with pytest.raises(MissingExtraError):
                    reg.check(name)
            else:
                assert reg.check(name) is not None
    for spec in ("pixels:24:gray=true", "hog:4:cells_per_block=3", "pca:50:iterated_power=3",
                 "pca:0.9", "resize:24", "deskew:image_shape=28x28"):
        freg.check(spec)
    for spec in ("kmeans:10", "gmm:covariance_type=diag", "knn-spectral:k_rule=eigengap",
                 "agglomerative:linkage=average", "dbscan:eps=0.3:min_samples=3"):
        creg.check(spec)
    assert creg.check("kmeans").n_init == 10  # imgclust's default on top of scikit-learn's


def all_entries():
    creg.load_builtins()
    freg.load_builtins()
    return [(reg, n) for reg in (freg, creg) for n in reg.names()]


def test_every_entry_describes_itself_with_typed_parameters():
    import inspect

    for reg, name in all_entries():
        d = reg.describe(name)
        assert d["name"] == name and d["kind"] in ("feature step", "clustering method")
        assert d["summary"] and "\n" not in d["summary"] and len(d["summary"]) <= 80, name
        assert d["description"].startswith(d["summary"]) and len(d["description"]) > 100, name
        assert "``" not in d["description"] and ":func:" not in d["description"]
        assert d["parameters"], name
        for p in d["parameters"]:
            assert set(p) == {"name", "type", "default"} and p["type"] and isinstance(p["type"], str)
        factory = reg.entry(name).factory
        kinds = {p.kind for p in inspect.signature(factory).parameters.values()}
        assert inspect.Parameter.VAR_KEYWORD not in kinds, f"{name}: **kwargs hides parameters"
        if d["primary"] is not None:
            assert d["primary"] in {p["name"] for p in d["parameters"]}


def test_describe_gives_imgclust_defaults_and_explains_the_jargon():
    creg.load_builtins()
    freg.load_builtins()
    km = {p["name"]: p for p in creg.describe("kmeans")["parameters"]}
    assert km["n_init"]["default"] == 10 and "int in [1, inf)" in km["n_init"]["type"]
    knn = creg.describe("knn-spectral")
    assert "eigengap (where the sorted eigenvalues" in knn["description"]
    assert "modularity (how many more links" in knn["description"]
    # its own graph rules, and every sweep criterion that applies to a method with k (elbow)
    assert {c["name"] for c in knn["criteria"]} == {"graph", "modularity", "eigengap", "silhouette",
                                                    "elbow", "log-elbow"}
    gmm = {c["name"]: c["meaning"] for c in creg.describe("gmm")["criteria"]}
    assert gmm["bic"].startswith("Bayesian information criterion")
    assert "shears each image" in freg.describe("deskew")["description"]
    assert "how much of its edges run in each direction" in freg.describe("hog")["description"]
    assert freg.describe("pixels")["input"] == "images" and freg.describe("pca")["input"] == "array"
    px = {p["name"]: p for p in freg.describe("pixels")["parameters"]}
    assert px["size"] == {"name": "size", "type": "int | None", "default": None}


def imgclust_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "imgclust.cli", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "COLUMNS": "120"})


def test_cli_methods_lists_every_name_with_its_summary():
    proc = imgclust_cli("methods")
    assert proc.returncode == 0, proc.stderr
    for reg, name in all_entries():
        line = next(ln for ln in proc.stdout.splitlines() if ln.split()[:1] == [name])
        assert reg.describe(name)["summary"][:30] in line


def test_cli_methods_name_prints_the_paragraph_and_a_parameter_table():
    proc = imgclust_cli("methods", "kmeans")
    assert proc.returncode == 0, proc.stderr
    out = " ".join(proc.stdout.split())
    assert "k-means: k centres" in out and "inertia" in out
    assert "k auto by silhouette:" in out
    row = next(ln for ln in proc.stdout.splitlines() if ln.startswith("│ n_init "))
    assert "10" in row and "int in [1, inf)" in row
    assert "n_clusters (positional)" in proc.stdout


def test_cli_methods_unknown_name_exits_2_listing_the_names():
    proc = imgclust_cli("methods", "kmeanz")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: unknown feature step or method 'kmeanz'")
    assert "kmeans" in proc.stderr and "pixels" in proc.stderr and "Traceback" not in proc.stderr
