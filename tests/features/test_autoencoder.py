import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

pytest.importorskip("torch")

from imgclust.features import build_steps  # noqa: E402
from imgclust.features.autoencoder import (  # noqa: E402
    AutoencoderFeatures,
    infer_image_shape,
    parse_hidden,
)


def blobs(rng: np.random.Generator, n: int = 60, d: int = 16) -> np.ndarray:
    """Two groups of rows in [0, 1] that differ in which half of the features is bright."""
    X = rng.random((n, d)).astype(np.float32) * 0.2
    X[: n // 2, : d // 2] += 0.8
    X[n // 2:, d // 2:] += 0.8
    return X


def test_dense_shape_dtype_and_history(rng):
    X = blobs(rng)
    ae = AutoencoderFeatures(n_components=3, hidden=(8,), max_epochs=4, random_state=0,
                             progress=False)
    E = ae.fit_transform(X)
    assert E.shape == (60, 3) and E.dtype == np.float32
    assert ae.n_features_in_ == 16
    assert 1 <= ae.n_epochs_ <= 4 and len(ae.history_) == ae.n_epochs_
    assert all(h["val_loss"] is not None for h in ae.history_)  # 10 % held out by default
    np.testing.assert_allclose(ae.transform(X), E)  # fit_transform == fit then transform


def test_same_seed_same_features_other_seed_differs(rng):
    X = blobs(rng)
    kw = dict(n_components=2, hidden="8", max_epochs=3, progress=False)
    a = AutoencoderFeatures(random_state=1, **kw).fit_transform(X)
    b = AutoencoderFeatures(random_state=1, **kw).fit_transform(X)
    c = AutoencoderFeatures(random_state=2, **kw).fit_transform(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_training_reduces_reconstruction_error(rng):
    X = blobs(rng, n=80)
    ae = AutoencoderFeatures(n_components=2, hidden=(16,), max_epochs=60, patience=60,
                             learning_rate=1e-2, random_state=0, progress=False).fit(X)
    assert ae.history_[-1]["loss"] < 0.5 * ae.history_[0]["loss"]
    err = float(((ae.reconstruct(X) - X) ** 2).mean())
    assert err < float(((X - X.mean(axis=0)) ** 2).mean())  # better than the mean image


def test_early_stopping_stops_on_a_plateau(rng):
    # with tol larger than any possible gain, every epoch after the first is a plateau
    ae = AutoencoderFeatures(n_components=2, hidden=(4,), max_epochs=200, patience=3, tol=1e3,
                             random_state=0, progress=False).fit(blobs(rng))
    assert (ae.n_epochs_, ae.best_epoch_) == (4, 1)
    # a real plateau: nothing but noise to reconstruct through a 1-value bottleneck
    noise = np.random.default_rng(1).random((60, 8)).astype(np.float32)
    ae = AutoencoderFeatures(n_components=1, hidden=(2,), max_epochs=300, patience=3, tol=1e-2,
                             random_state=0, progress=False).fit(noise)
    assert ae.n_epochs_ < 300
    assert ae.n_epochs_ - ae.best_epoch_ == 3  # stopped `patience` epochs after the best one


def test_no_validation_share_monitors_training_loss(rng):
    ae = AutoencoderFeatures(n_components=2, hidden=(4,), max_epochs=2, validation_fraction=0.0,
                             random_state=0, progress=False).fit(blobs(rng))
    assert [h["val_loss"] for h in ae.history_] == [None, None]


def test_conv_on_gray_and_colour_squares(rng):
    gray = rng.random((24, 8 * 8)).astype(np.float32)
    ae = AutoencoderFeatures(n_components=4, kind="conv", hidden=4, max_epochs=2, random_state=0,
                             progress=False)
    assert ae.fit_transform(gray).shape == (24, 4)
    colour = rng.random((24, 6 * 6 * 3)).astype(np.float32)
    ae3 = AutoencoderFeatures(n_components=3, kind="conv", hidden=4, max_epochs=2,
                              random_state=0, progress=False).fit(colour)
    assert ae3.transform(colour).shape == (24, 3)
    assert ae3.reconstruct(colour[:2]).shape == (2, 108)  # channels-last order restored


def test_conv_needs_a_shape_it_can_infer(rng):
    with pytest.raises(ValueError, match="image_shape"):
        AutoencoderFeatures(kind="conv", max_epochs=1).fit(rng.random((10, 50)))
    ae = AutoencoderFeatures(n_components=2, kind="conv", hidden=2, image_shape="5x10",
                             max_epochs=1, random_state=0, progress=False)
    assert ae.fit_transform(rng.random((10, 50))).shape == (10, 2)


def test_bad_parameters_and_input_are_refused(rng):
    with pytest.raises(ValueError, match="kind='rnn'"):
        AutoencoderFeatures(kind="rnn").fit(rng.random((10, 4)))
    with pytest.raises(ValueError, match="validation_fraction=1.5"):
        AutoencoderFeatures(validation_fraction=1.5).fit(rng.random((10, 4)))
    ae = AutoencoderFeatures(n_components=2, hidden=2, max_epochs=1, progress=False).fit(
        rng.random((10, 4)))
    with pytest.raises(ValueError, match="features"):
        ae.transform(rng.random((3, 5)))


def test_helpers():
    assert parse_hidden("500-500-2000") == (500, 500, 2000)
    assert parse_hidden([3, 2]) == (3, 2)
    with pytest.raises(ValueError, match="positive"):
        parse_hidden("4-0")
    assert infer_image_shape(28 * 28) == (1, 28, 28)
    assert infer_image_shape(3 * 32 * 32) == (3, 32, 32)
    assert infer_image_shape(24, "2x4x3") == (3, 2, 4)


def test_registered_as_an_array_step_after_pixels():
    steps = build_steps("autoencoder:5:kind=conv:hidden=500-500", random_state=3)
    assert [s for s, _ in steps][0] == "pixels"
    ae = steps[1][1]
    assert isinstance(ae, AutoencoderFeatures)
    assert (ae.n_components, ae.kind, ae.hidden, ae.random_state) == (5, "conv", "500-500", 3)


@parametrize_with_checks([AutoencoderFeatures(n_components=2, hidden=4, max_epochs=2,
                                              progress=False)])
def test_follows_the_sklearn_contract(estimator, check):
    check(estimator)
