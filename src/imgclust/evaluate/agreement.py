"""Agreement between clusterings of the same images."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score


def agreement_matrix(labelings: Mapping[str, Sequence[int]], score: str = "ari"
                     ) -> tuple[list[str], np.ndarray]:
    """Pairwise ARI (or NMI) between named labelings of the same images.

    Returns
    -------
    names : list of str
    matrix : ndarray of shape (n_methods, n_methods), symmetric with ones on the diagonal
    """
    fn = {"ari": adjusted_rand_score, "nmi": normalized_mutual_info_score}[score]
    names = list(labelings)
    m = np.eye(len(names))
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            m[i, j] = m[j, i] = fn(labelings[a], labelings[names[j]])
    return names, m
