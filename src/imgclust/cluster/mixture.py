"""Gaussian mixtures (scikit-learn): full, tied, diag or spherical covariances; Bayesian variant.

The Bayesian mixture prunes unused components itself, so its k is an upper bound.
"""
from sklearn.mixture import BayesianGaussianMixture, GaussianMixture

from imgclust.cluster.registry import CLUSTERERS

CLUSTERERS.add("gmm", GaussianMixture, primary="n_components", k_param="n_components",
               criteria=("bic", "aic", "silhouette", "density"), sweep="k")
CLUSTERERS.add("bgmm", BayesianGaussianMixture, primary="n_components", k_param="n_components",
               criteria=("upper-bound",), sweep=None)
