"""Statistical primitives shared by training and evaluation (pure numpy, deterministic).

* ranking metrics with weights, vectorised over many bootstrap replicates at once: ROC-AUC (ties count
  one half, as ``sklearn.metrics.roc_auc_score``) and average precision (as
  ``sklearn.metrics.average_precision_score``); with integer weights they equal the metric on the rows
  repeated that many times;
* the **user-level bootstrap**: each replicate draws users with replacement and keeps all of a drawn
  user's rows, as many times as the user was drawn — rows of one user are not independent (the same user
  at several cutoffs), so intervals must resample users, not rows;
* reliability (calibration) tables and the expected calibration error; lift and capture at a share.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "calibration_table",
    "capture_at",
    "expected_calibration_error",
    "lift_at",
    "percentile_interval",
    "ranked",
    "user_bootstrap_weights",
    "weighted_average_precision",
    "weighted_roc_auc",
]


def user_bootstrap_weights(user_ids: np.ndarray, n_samples: int, seed: int) -> np.ndarray:
    """(n_samples, n_rows) row weights: how often each row's user was drawn in each replicate.

    Users are drawn with replacement, as many as there are distinct users; every row of a drawn user
    gets the user's draw count. Same ``user_ids`` order + seed → same weights.
    """
    _, codes = np.unique(np.asarray(user_ids), return_inverse=True)
    n_users = int(codes.max()) + 1 if codes.size else 0
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, max(n_users, 1), size=(n_samples, n_users))
    counts = np.zeros((n_samples, n_users), dtype=np.float64)
    rows = np.repeat(np.arange(n_samples), n_users)
    np.add.at(counts, (rows, draws.ravel()), 1.0)
    return counts[:, codes]


def _tie_groups(p: np.ndarray, descending: bool) -> tuple[np.ndarray, np.ndarray]:
    """(order, starts): row order by score and the start index of each run of equal scores."""
    order = np.argsort(-p if descending else p, kind="stable")
    ps = p[order]
    starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])
    return order, starts


def weighted_roc_auc(y: np.ndarray, p: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """ROC-AUC per row of ``weights`` (shape (B, n); None = one replicate of unit weights) → shape (B,).

    NaN where a replicate has no positive or no negative weight.
    """
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=np.float64)
    w = np.ones((1, y.size)) if weights is None else np.atleast_2d(np.asarray(weights, dtype=np.float64))
    order, starts = _tie_groups(p, descending=False)
    wpos = np.add.reduceat(w[:, order] * y[order], starts, axis=1) if y.size else np.zeros((len(w), 0))
    wneg = np.add.reduceat(w[:, order] * ~y[order], starts, axis=1) if y.size else np.zeros((len(w), 0))
    neg_below = np.cumsum(wneg, axis=1) - wneg  # negative weight strictly below each tie group
    pairs = (wpos * (neg_below + 0.5 * wneg)).sum(axis=1)
    total = wpos.sum(axis=1) * wneg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, pairs / np.where(total > 0, total, 1.0), np.nan)


def weighted_average_precision(y: np.ndarray, p: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Average precision (step-wise PR-AUC) per row of ``weights`` → shape (B,); NaN without positives."""
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=np.float64)
    w = np.ones((1, y.size)) if weights is None else np.atleast_2d(np.asarray(weights, dtype=np.float64))
    order, starts = _tie_groups(p, descending=True)
    tp = np.cumsum(np.add.reduceat(w[:, order] * y[order], starts, axis=1), axis=1)
    fp = np.cumsum(np.add.reduceat(w[:, order] * ~y[order], starts, axis=1), axis=1)
    total_pos = tp[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / np.where(tp + fp > 0, tp + fp, 1.0), 0.0)
        recall_step = np.diff(np.c_[np.zeros(len(w)), tp], axis=1) / np.where(total_pos > 0, total_pos, 1.0)
        ap = (recall_step * precision).sum(axis=1)
    return np.where(total_pos[:, 0] > 0, ap, np.nan)


def percentile_interval(values: np.ndarray, alpha: float = 0.05) -> list[float]:
    """The central ``1 - alpha`` percentile interval of the finite ``values`` ([nan, nan] if none)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return [float("nan"), float("nan")]
    lo, hi = np.percentile(v, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return [float(lo), float(hi)]


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
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
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
