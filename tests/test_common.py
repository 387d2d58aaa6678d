"""Contracts for every registry entry.

- clusterers: scikit-learn's own estimator checks (``parametrize_with_checks``) on the instances
  the registry builds; the only failures allowed are the ones scikit-learn itself lists for its
  own estimator (``_get_expected_failed_checks``: k-means' sample-weight equivalence).
- array-input feature steps written here (pca, deskew, resize, hog, autoencoder): scikit-learn's
  estimator checks as well, with no check excused;
- images-input feature steps: shape, dtype float32, determinism, a stable cache key that changes
  with the parameters, and the scikit-learn parameter contract (``clone``, ``get_params``).
"""
from __future__ import annotations

import importlib.util
import inspect
import os
import warnings

import numpy as np
import pytest
from PIL import Image
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from imgclust.cluster import make_estimator
from imgclust.cluster import registry as creg
from imgclust.features import registry as freg

creg.load_builtins()
freg.load_builtins()

#: every clusterer, and the Gaussian mixture with each covariance type
CLUSTER_SPECS = [n for n in creg.names() if n != "gmm"] + [
    f"gmm:covariance_type={c}" for c in ("full", "tied", "diag", "spherical")]
CLUSTERERS = [make_estimator(s) for s in CLUSTER_SPECS]

#: the extra each optional images step needs (skipped when not installed)
EXTRAS = {"cnn": "onnxruntime", "onnx": "onnxruntime"}
IMAGE_STEPS = [n for n in freg.names() if freg.entry(n).meta.get("input") == "images"]


def sklearn_expected_failures(estimator) -> dict[str, str]:
    """The checks scikit-learn itself expects its own estimator to fail, with its reasons
    (sklearn/utils/_test_common/instance_generator.py); nothing else is excused."""
    try:
        from sklearn.utils._test_common.instance_generator import _get_expected_failed_checks
    except ImportError:  # moved in another release: then every check must pass
        return {}
    return _get_expected_failed_checks(estimator)


def test_every_clusterer_is_checked():
    assert {type(e).__name__ for e in CLUSTERERS} >= {
        "KMeans", "MiniBatchKMeans", "AgglomerativeClustering", "DBSCAN", "HDBSCAN",
        "SpectralClustering", "GaussianMixture", "BayesianGaussianMixture"}
    assert {s.split(":")[0] for s in CLUSTER_SPECS} == set(creg.names())
    # the excused checks are few and named by scikit-learn for its own estimators
    excused = {n for e in CLUSTERERS for n in sklearn_expected_failures(e)}
    assert excused <= {"check_sample_weight_equivalence_on_dense_data",
                       "check_sample_weight_equivalence_on_sparse_data",
                       "check_array_api_mixed_inputs"}


@parametrize_with_checks(CLUSTERERS, expected_failed_checks=sklearn_expected_failures)
def test_clusterers_follow_the_sklearn_contract(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "graph is not fully connected"…
        check(estimator)


# --- array-input feature steps --------------------------------------------------------------

#: every array step of imgclust's own, as the registry builds it. scikit-learn's checks feed
#: matrices of 1 to 20 columns, which deskew, resize and hog read as one line of pixels (with
#: a warning): hog gets 1-pixel cells in 1-cell blocks, since its default block (2x2 cells of
#: 4 px) does not fit in a line and is refused, as scikit-image refuses it. The autoencoder
#: trains 2 epochs of a small network per check.
ARRAY_STEP_SPECS = ["pca", "pca:2", "deskew", "resize", "hog:1:cells_per_block=1",
                    "autoencoder:2:hidden=8:max_epochs=2:random_state=0:progress=false"]
#: the array steps not checked here, and why
UNCHECKED_ARRAY_STEPS = {
    "umap": "umap-learn's own estimator, not imgclust's",
    "tsne": "scikit-learn's TSNE, checked by scikit-learn's own tests (it has no transform)",
}
ARRAY_STEPS = [freg.create(s) for s in ARRAY_STEP_SPECS]


def test_every_array_step_is_checked():
    array_names = {n for n in freg.names() if freg.entry(n).meta.get("input") == "array"}
    checked = {s.split(":")[0] for s in ARRAY_STEP_SPECS}
    assert checked | set(UNCHECKED_ARRAY_STEPS) == array_names
    assert not checked & set(UNCHECKED_ARRAY_STEPS)


@parametrize_with_checks(ARRAY_STEPS)
def test_array_steps_follow_the_sklearn_contract(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "rows of 3 values are not square images"
        check(estimator)


# --- images-input feature steps -------------------------------------------------------------

@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    """ONNX graphs go to a tmp folder (reusing the session's one if tests/features set it)."""
    from imgclust.features import cnn

    if os.environ.get(cnn.CACHE_ENV):
        yield
        return
    mp = pytest.MonkeyPatch()
    mp.setenv(cnn.CACHE_ENV, str(tmp_path_factory.mktemp("onnx-cache")))
    yield
    mp.undo()


def make_step(name: str, request) -> object:
    extra = EXTRAS.get(name)
    if extra and importlib.util.find_spec(extra) is None:
        pytest.skip(f"the {name!r} step needs an optional extra ({extra})")
    if name == "cnn":
        request.getfixturevalue("onnx_cache")
        return freg.create("cnn:64")  # the size tests/features/test_cnn.py exports once
    if name == "onnx":  # a user's model file is required: a tiny one
        return freg.create(f"onnx:{request.getfixturevalue('tiny_onnx')}:size=16")
    return freg.create(name)


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    """An ONNX model of one GlobalAveragePool: (n, 3, h, w) -> (n, 3, 1, 1)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    inp = helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["n", 3, "h", "w"])
    out = helper.make_tensor_value_info("maps", TensorProto.FLOAT, ["n", 3, 1, 1])
    graph = helper.make_graph([helper.make_node("GlobalAveragePool", ["pixel_values"], ["maps"])],
                              "tiny", [inp], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("onnx-model") / "pool.onnx"
    onnx.save(model, str(path))
    return path


def images(n: int = 5, seed: int = 0) -> list[Image.Image]:
    """Mixed sizes and modes, as a folder would give."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        a = rng.integers(0, 256, (20 + 3 * i, 24, 3), dtype=np.uint8)
        img = Image.fromarray(a)
        out.append(img.convert("L").convert("RGB") if i == 2 else img)
    return out


def _changed(value):
    """Another value of the same kind, for the cache-key check."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value * 2 if value else 1
    if value is None:
        return 16
    return f"{value}-other"


@pytest.mark.parametrize("name", IMAGE_STEPS)
def test_image_step_contract(name, request):
    step = make_step(name, request)
    assert step.get_params() == clone(step).get_params()
    params = list(inspect.signature(type(step).__init__).parameters)[1:]
    assert set(params) == set(step.get_params(deep=False))  # __init__ stores its arguments only
    imgs = images()
    assert step.fit(imgs) is step
    X = step.transform(imgs)
    assert X.dtype == np.float32 and X.ndim == 2 and X.shape[0] == len(imgs)
    assert X.shape[1] == step.output_dim_for(imgs[0])
    assert np.isfinite(X).all()
    np.testing.assert_array_equal(X, clone(step).fit(imgs).transform(imgs))  # determinism
    # an image array works as well as Pillow images
    arr = np.stack([np.asarray(im.resize((24, 20))) for im in imgs])
    assert step.transform(arr).shape[0] == len(imgs)
    # cache key: stable, same for equal parameters, different when the first parameter changes
    key = step.cache_key()
    assert isinstance(key, str) and key == step.cache_key() == clone(step).cache_key()
    first = params[0]
    other = clone(step).set_params(**{first: _changed(step.get_params()[first])})
    assert other.cache_key() != key


def test_image_steps_are_listed():
    assert "pixels" in IMAGE_STEPS
    for name in IMAGE_STEPS:
        assert freg.entry(name).primary is not None or name == "pixels"


@pytest.mark.parametrize("name", IMAGE_STEPS)
def test_image_step_rows_do_not_depend_on_the_batch(name, request):
    """The pipeline extracts in batches (and caches them): a row must not depend on the others."""
    step = make_step(name, request)
    imgs = images()
    X = step.fit(imgs).transform(imgs)
    parts = [step.transform(imgs[i:i + 2]) for i in range(0, len(imgs), 2)]
    assert [p.shape[1] for p in parts] == [X.shape[1]] * len(parts)
    np.testing.assert_array_equal(np.concatenate(parts), X)
