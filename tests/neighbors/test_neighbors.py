"""The k-NN layer: scikit-learn and faiss give the same neighbours."""
from __future__ import annotations

import numpy as np
import pytest

from imgclust.errors import ConfigError
from imgclust.neighbors import make_index, self_knn


@pytest.mark.parametrize("backend", ["sklearn", "faiss"])
def test_exact_neighbours_agree_with_brute_force(backend):
    if backend == "faiss":
        pytest.importorskip("faiss")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8)).astype(np.float32)
    Q = rng.normal(size=(20, 8)).astype(np.float32)
    d, i = make_index(X, backend).search(Q, 5)
    full = np.linalg.norm(Q[:, None] - X[None], axis=2)
    np.testing.assert_array_equal(i, np.argsort(full, axis=1)[:, :5])
    np.testing.assert_allclose(d, np.sort(full, axis=1)[:, :5], rtol=1e-4)


def test_self_knn_leaves_each_row_out_even_with_duplicates():
    X = np.array([[0.0], [0.0], [1.0], [3.0]], dtype=np.float32)
    D, I = self_knn(make_index(X, "sklearn"), X, 1)
    assert I[:, 0].tolist() == [1, 0, 0, 2] or I[:, 0].tolist() == [1, 0, 1, 2]
    assert D[:2, 0].tolist() == [0.0, 0.0]
    assert all(I[j, 0] != j for j in range(4))


def test_bad_backend_and_empty_matrix_are_usage_errors():
    with pytest.raises(ConfigError, match="valid"):
        make_index(np.zeros((3, 2)), "annoy")
    with pytest.raises(ConfigError, match="non-empty"):
        make_index(np.zeros((0, 2)))
