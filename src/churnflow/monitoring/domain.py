"""Multivariate drift: a domain classifier learns to tell reference rows from current rows.

The classifier (LightGBM with small trees on the columns' reference codes, so every column is on its
fixed reference cells) is cross-validated with folds grouped by user — the same user's
rows at several cutoffs never sit on both sides of a fold, else the classifier would recognise users, not
drift. Its out-of-fold ROC-AUC is 0.5 when the two samples cannot be told apart.

The threshold is calibrated on the reference itself: ``monitor.domain_splits`` times, the reference
sample's users are split in two random halves and the same cross-validated AUC is measured between them;
threshold = mean + ``monitor.domain_z`` × sd of those AUCs (sd floored at the Mann–Whitney null sd for the
numbers of users, and rescaled when a check compares a different number of rows). A check compares one
random half of the reference sample with as many current rows, matched per cutoff offset.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from churnflow.config.monitor import MonitorConfig


@dataclass(frozen=True)
class DomainResult:
    """Outcome of one domain-classifier check."""

    auc: float
    threshold: float
    drift: bool
    n_reference_rows: int
    n_current_rows: int
    null_aucs: list[float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def encode_codes(codes: np.ndarray) -> str:
    """uint8 (rows, columns) codes → base64 text (row-major)."""
    return base64.b64encode(np.ascontiguousarray(codes, dtype=np.uint8).tobytes()).decode("ascii")


def decode_codes(text: str, n_columns: int) -> np.ndarray:
    """Inverse of :func:`encode_codes`."""
    raw = np.frombuffer(base64.b64decode(text), dtype=np.uint8)
    if n_columns == 0 or raw.size % n_columns:
        raise ValueError(f"domain sample: {raw.size} codes do not fill rows of {n_columns} columns")
    return raw.reshape(-1, n_columns)


def group_folds(groups: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """A fold number per row: users shuffled (seeded) and dealt round-robin, so a user's rows share a fold."""
    users, codes = np.unique(groups, return_inverse=True)
    order = np.random.default_rng(seed).permutation(users.size)
    fold_of_user = np.empty(users.size, dtype=np.int64)
    fold_of_user[order] = np.arange(users.size) % folds
    return fold_of_user[codes]


def cross_validated_auc(
    reference: np.ndarray,
    ref_groups: np.ndarray,
    current: np.ndarray,
    cur_groups: np.ndarray,
    folds: int,
    seed: int,
) -> float:
    """Out-of-fold ROC-AUC of a classifier separating ``current`` (1) from ``reference`` (0) rows.

    LightGBM (small trees, one thread, deterministic) on the codes; folds group rows by user (reference
    and current users are distinct people, their group ids are kept apart).
    """
    import lightgbm as lgb

    from churnflow.monitoring.performance import roc_auc

    x = np.vstack([reference, current]).astype(np.float32)
    y = np.r_[np.zeros(len(reference), dtype=np.int8), np.ones(len(current), dtype=np.int8)]
    groups = np.r_[np.asarray(ref_groups, dtype=np.int64), np.asarray(cur_groups, dtype=np.int64) + 10**9]
    n_groups = min(len(np.unique(groups[y == 0])), len(np.unique(groups[y == 1])))
    k = min(folds, n_groups)
    if k < 2:
        return 0.5
    fold = group_folds(groups, k, seed)
    scores = np.zeros(len(y))
    params = {
        "objective": "binary",
        "num_leaves": 8,
        "learning_rate": 0.1,
        "min_data_in_leaf": 20,
        "feature_fraction": 0.5,
        "num_threads": 1,
        "deterministic": True,
        "force_row_wise": True,
        "seed": seed,
        "verbose": -1,
    }
    for f in range(k):
        train, test = fold != f, fold == f
        if len(np.unique(y[train])) < 2 or not test.any():
            continue
        booster = lgb.train(params, lgb.Dataset(x[train], y[train]), num_boost_round=40)
        scores[test] = booster.predict(x[test])
    return roc_auc(y, scores)


def _null_sd(n_users_a: int, n_users_b: int) -> float:
    """Mann–Whitney null sd of an AUC between ``n_users_a`` and ``n_users_b`` independent units."""
    a, b = max(n_users_a, 1), max(n_users_b, 1)
    return float(np.sqrt((a + b + 1) / (12.0 * a * b)))


def calibrate_domain(codes: np.ndarray, groups: np.ndarray, cfg: MonitorConfig, seed: int) -> dict[str, Any]:
    """Null AUCs of reference-vs-reference halves of the sample and the threshold they give."""
    users = np.unique(groups)
    rng = np.random.default_rng(seed)
    aucs, sizes = [], []
    for r in range(cfg.domain_splits):
        half = rng.permutation(users)[: users.size // 2]
        in_a = np.isin(groups, half)
        aucs.append(
            cross_validated_auc(
                codes[in_a], groups[in_a], codes[~in_a], groups[~in_a], cfg.domain_folds, seed + r
            )
        )
        sizes.append(len(groups))
    mean = float(np.mean(aucs))
    sd = max(float(np.std(aucs, ddof=1)), _null_sd(users.size // 2, users.size - users.size // 2))
    return {
        "null_aucs": [float(a) for a in aucs],
        "null_mean": mean,
        "null_sd": sd,
        "null_rows": int(np.mean(sizes)),
        "threshold": mean + cfg.domain_z * sd,
    }


def domain_check(
    domain: dict[str, Any],
    n_columns: int,
    current: np.ndarray,
    cur_groups: np.ndarray,
    cur_offsets: np.ndarray,
    cfg: MonitorConfig,
    seed: int,
) -> DomainResult | None:
    """Half of the reference sample vs current rows matched per offset; ``None`` when nothing matches."""
    codes = decode_codes(domain["codes"], n_columns)
    groups = np.asarray(domain["groups"], dtype=np.int64)
    offsets = np.asarray(domain["offsets"], dtype=np.int64)
    rng = np.random.default_rng(seed)
    users = np.unique(groups)
    half = np.isin(groups, rng.permutation(users)[: users.size // 2])
    ref_idx, cur_idx = [], []
    for offset in np.intersect1d(offsets[half], cur_offsets):
        ref_at = np.flatnonzero(half & (offsets == offset))
        cur_at = np.flatnonzero(cur_offsets == offset)
        k = min(ref_at.size, cur_at.size)
        ref_idx.append(rng.choice(ref_at, k, replace=False))
        cur_idx.append(rng.choice(cur_at, k, replace=False))
    if not ref_idx or sum(len(i) for i in ref_idx) < 10:
        return None
    r, c = np.sort(np.concatenate(ref_idx)), np.sort(np.concatenate(cur_idx))
    auc = cross_validated_auc(codes[r], groups[r], current[c], cur_groups[c], cfg.domain_folds, seed)
    n_rows = len(r) + len(c)
    sd = float(domain["null_sd"]) * np.sqrt(float(domain["null_rows"]) / n_rows)
    threshold = float(domain["null_mean"]) + cfg.domain_z * sd
    return DomainResult(
        auc=auc,
        threshold=threshold,
        drift=bool(auc > threshold),
        n_reference_rows=len(r),
        n_current_rows=len(c),
        null_aucs=[float(a) for a in domain["null_aucs"]],
    )
