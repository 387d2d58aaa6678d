"""Evaluation: scores against labels, internal scores, agreement between runs."""
from imgclust.evaluate.agreement import agreement_matrix
from imgclust.evaluate.metrics import (confusion, external_scores, hungarian_accuracy,
                                       hungarian_match, internal_scores, purity)

__all__ = ["agreement_matrix", "confusion", "external_scores", "hungarian_accuracy",
           "hungarian_match", "internal_scores", "purity"]
