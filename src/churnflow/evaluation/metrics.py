"""Test-set metric blocks: point figures with user-level bootstrap intervals, and paired comparisons.

Every interval resamples **users** (all of a drawn user's rows together; ``churnflow.stats``), never rows:
the same user sits at several test cutoffs. Paired comparisons (model vs oracle, challenger vs champion)
use the same replicates for both scores. Invariant: deterministic for given inputs and seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import brier_score_loss, f1_score, log_loss, precision_score, recall_score

from churnflow.stats import (
    capture_at,
    expected_calibration_error,
    lift_at,
    percentile_interval,
    user_bootstrap_weights,
    weighted_average_precision,
    weighted_roc_auc,
)

EPS = 1e-15

__all__ = ["check_binary", "classification_metrics", "paired_comparison", "user_bootstrap_weights"]


def check_binary(y: np.ndarray, what: str = "test labels") -> np.ndarray:
    """``y`` as int64 0/1; raises ValueError naming ``what`` if it is not binary with both classes."""
    y = np.asarray(y).astype(np.int64)
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:
        raise ValueError(f"{what} must be 0/1, got values {sorted(values)}")
    if len(values) < 2:
        raise ValueError(f"{what} hold a single class ({sorted(values)}): ROC-AUC is undefined")
    return y


def classification_metrics(
    y: np.ndarray,
    p: np.ndarray,
    threshold: float,
    *,
    users: np.ndarray,
    weights: np.ndarray,
    calibration_bins: int = 10,
) -> dict[str, Any]:
    """One view's block of ``reports/metrics.json``: figures at ``threshold`` and user-bootstrap intervals.

    ``weights``: (B, n) user-bootstrap row weights (``user_bootstrap_weights`` over ``users``).
    """
    y = check_binary(y)
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    pred = (p >= threshold).astype(np.int64)
    mean_p = weights @ p / np.maximum(weights.sum(axis=1), 1e-12)
    rate = weights @ y / np.maximum(weights.sum(axis=1), 1e-12)
    return {
        "roc_auc": float(weighted_roc_auc(y, p)[0]),
        "roc_auc_ci": percentile_interval(weighted_roc_auc(y, p, weights)),
        "pr_auc": float(weighted_average_precision(y, p)[0]),
        "pr_auc_ci": percentile_interval(weighted_average_precision(y, p, weights)),
        "log_loss": float(log_loss(y, np.clip(p, EPS, 1 - EPS), labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p, calibration_bins),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "threshold": float(threshold),
        "lift_at_10": lift_at(y, p, 0.10),
        "lift_at_25": lift_at(y, p, 0.25),
        "capture_at_10": capture_at(y, p, 0.10),
        "capture_at_25": capture_at(y, p, 0.25),
        "positive_rate": float(y.mean()),
        "positive_rate_ci": percentile_interval(rate),
        "mean_probability": float(p.mean()),
        "mean_probability_ci": percentile_interval(mean_p),
        "predicted_positive_rate": float(pred.mean()),
        "n_rows": len(y),
        "n_users": len(np.unique(users)),
        "n_positive": int(y.sum()),
    }


def paired_comparison(
    y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, weights: np.ndarray, alpha: float = 0.05
) -> dict[str, Any]:
    """ROC-AUC of ``p_a`` against ``p_b`` on the same rows and the same user-bootstrap replicates.

    Returns ``auc_a``, ``auc_b``, ``difference`` (a − b) and ``ratio`` (a / b) with ``1 - alpha`` intervals,
    and ``p_a_not_better``: the share of replicates where a's AUC is not above b's.
    """
    y = check_binary(y)
    auc_a, auc_b = float(weighted_roc_auc(y, p_a)[0]), float(weighted_roc_auc(y, p_b)[0])
    boot_a, boot_b = weighted_roc_auc(y, p_a, weights), weighted_roc_auc(y, p_b, weights)
    ok = np.isfinite(boot_a) & np.isfinite(boot_b)
    diff, ratio = boot_a[ok] - boot_b[ok], boot_a[ok] / np.where(boot_b[ok] > 0, boot_b[ok], np.nan)
    return {
        "auc_a": auc_a,
        "auc_b": auc_b,
        "difference": auc_a - auc_b,
        "difference_ci": percentile_interval(diff, alpha),
        "ratio": auc_a / auc_b if auc_b > 0 else float("nan"),
        "ratio_ci": percentile_interval(ratio, alpha),
        "p_a_not_better": float(np.mean(diff <= 0)) if diff.size else float("nan"),
    }
