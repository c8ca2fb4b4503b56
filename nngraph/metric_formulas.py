"""The formulas of the metrics that are more than a ratio of counts: precision, recall and F1
from a confusion matrix, and the area under the ROC curve from scores (nngraph/metrics.py
gathers what they read)."""
from __future__ import annotations

import math

import numpy as np


def precision_recall_f1(confusion: np.ndarray) -> tuple[float, float, float]:
    """From a confusion matrix (rows true, columns predicted): of class 1 for two classes,
    else the macro average over the classes that occur as truth or prediction. A ratio
    with nothing to divide by counts 0."""
    c = confusion.astype(np.float64)
    tp, predicted, true = np.diag(c), c.sum(axis=0), c.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, true, out=np.zeros_like(tp), where=true > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(tp), where=both > 0)
    if len(c) == 2:
        return float(precision[1]), float(recall[1]), float(f1[1])
    seen = (predicted + true) > 0
    return tuple(float(v[seen].mean()) if seen.any() else 0.0 for v in (precision, recall, f1))


def auc(scores: np.ndarray, truth: np.ndarray) -> float:
    """Area under the ROC curve: for binary truth (0/1) and one score per element, the
    chance that a positive scores above a negative (ties count half), from ranks; for
    scores (N, K) and class indices, the macro average of each class against the rest over
    the classes that have both. NaN when no class has both."""
    if scores.ndim == 2:
        per_class = [_binary_auc(scores[:, j], truth == j) for j in range(scores.shape[1])]
        per_class = [a for a in per_class if not math.isnan(a)]
        return float(np.mean(per_class)) if per_class else math.nan
    return _binary_auc(scores, truth == 1)


def _binary_auc(scores, positive) -> float:
    pos = int(positive.sum())
    neg = len(positive) - pos
    if pos == 0 or neg == 0:
        return math.nan
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]         # 1-based, ties share their mean
    return float((ranks[positive].sum() - pos * (pos + 1) / 2.0) / (pos * neg))
