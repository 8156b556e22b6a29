"""Test-set metrics: ROC-AUC and PR-AUC with bootstrap 95% intervals, log loss, Brier, calibration (ECE),
F1/precision/recall at the threshold, lift and capture at the top 10% / 25%.

Invariant: every function is deterministic for given inputs and seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

EPS = 1e-15


def ranked(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``y`` ordered by descending score (stable; ties keep input order)."""
    return np.asarray(y)[np.argsort(-np.asarray(p), kind="stable")]


def capture_at(y: np.ndarray, p: np.ndarray, share: float) -> float:
    """Share of all positives found in the top ``share`` of scores."""
    ys = ranked(y, p)
    k = max(1, int(np.ceil(share * len(ys))))
    total = ys.sum()
    return float(ys[:k].sum() / total) if total else 0.0


def lift_at(y: np.ndarray, p: np.ndarray, share: float) -> float:
    """Positive rate in the top ``share`` divided by the overall positive rate."""
    ys = ranked(y, p)
    k = max(1, int(np.ceil(share * len(ys))))
    base = ys.mean()
    return float(ys[:k].mean() / base) if base else 0.0


def calibration_table(y: np.ndarray, p: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal-width reliability bins: (mean predicted, observed positive rate, count) of the non-empty bins."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    sum_p = np.bincount(idx, weights=p, minlength=n_bins)
    sum_y = np.bincount(idx, weights=y.astype(np.float64), minlength=n_bins)
    keep = count > 0
    return sum_p[keep] / count[keep], sum_y[keep] / count[keep], count[keep]


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int) -> float:
    """ECE: count-weighted mean |observed rate − mean predicted| over equal-width bins."""
    mean_p, frac, count = calibration_table(y, p, n_bins)
    return float(np.sum(count * np.abs(frac - mean_p)) / max(count.sum(), 1))


def bootstrap_ci(
    y: np.ndarray, p: np.ndarray, n_samples: int, seed: int, alpha: float = 0.05
) -> dict[str, list[float]]:
    """Percentile bootstrap intervals for ROC-AUC and PR-AUC (resamples with one class are skipped)."""
    rng = np.random.default_rng(seed)
    n = len(y)
    aucs: list[float] = []
    praucs: list[float] = []
    for _ in range(n_samples):
        idx = rng.integers(0, n, n)
        ys = y[idx]
        if ys.min() == ys.max():
            continue
        aucs.append(roc_auc_score(ys, p[idx]))
        praucs.append(average_precision_score(ys, p[idx]))
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    if not aucs:
        return {"roc_auc": [float("nan")] * 2, "pr_auc": [float("nan")] * 2}
    return {
        "roc_auc": [float(v) for v in np.percentile(aucs, q)],
        "pr_auc": [float(v) for v in np.percentile(praucs, q)],
    }


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
    calibration_bins: int = 10,
    bootstrap_samples: int = 1000,
    seed: int = 42,
) -> dict[str, Any]:
    """The ``test`` block of ``reports/metrics.json`` (contract keys plus a few extras)."""
    y = check_binary(y)
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    pred = (p >= threshold).astype(np.int64)
    ci = bootstrap_ci(y, p, bootstrap_samples, seed)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "roc_auc_ci": ci["roc_auc"],
        "pr_auc": float(average_precision_score(y, p)),
        "pr_auc_ci": ci["pr_auc"],
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
        "predicted_positive_rate": float(pred.mean()),
        "mean_probability": float(p.mean()),
    }
