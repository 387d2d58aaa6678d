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
