"""Gaussian mixtures (scikit-learn): full, tied, diag or spherical covariances; Bayesian variant.

The Bayesian mixture prunes unused components itself, so its k is an upper bound.
"""
from sklearn.mixture import BayesianGaussianMixture, GaussianMixture

from imgclust.cluster.registry import CLUSTERERS

CLUSTERERS.add(
    "gmm", GaussianMixture, primary="n_components", k_param="n_components",
    criteria=("bic", "aic", "silhouette", "density"), sweep="k",
    about="Gaussian mixture: clusters as elliptical clouds of points.\n\n"
          "Gaussian mixture (scikit-learn): each cluster is an elliptical cloud of points (a "
          "Gaussian with its own centre and spread; covariance_type says which shapes are "
          "allowed), fitted by expectation-maximisation; each image goes to its most probable "
          "cloud. With k auto, k is chosen by BIC by default.")
CLUSTERERS.add(
    "bgmm", BayesianGaussianMixture, primary="n_components", k_param="n_components",
    criteria=("upper-bound",), sweep=None,
    about="Bayesian Gaussian mixture: k is only an upper bound.\n\n"
          "Bayesian Gaussian mixture (scikit-learn): a Gaussian mixture whose prior lets the fit "
          "leave components empty, so k (n_components) is only an upper bound and the mixture "
          "keeps as many clouds as the data support.")
