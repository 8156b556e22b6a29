"""Multivariate drift: a domain classifier learns to tell reference rows from current rows.

The classifier (LightGBM with small trees on the columns' reference codes, so every column is on its
fixed reference cells) is cross-validated with folds grouped by user — the same user's
rows at several cutoffs never sit on both sides of a fold, else the classifier would recognise users, not
drift. Its ROC-AUC (within each fold, averaged) is 0.5 when the two samples cannot be told apart.

The threshold is calibrated on the reference itself: ``monitor.domain_splits`` times, the reference
sample's users are split in two random halves and the same cross-validated AUC is measured between them;
threshold = centre + ``monitor.domain_z`` × sd of those AUCs, where the centre is their mean floored at 0.5
(the null AUC of two exchangeable samples is 0.5; a lower mean of the halves — the within-fold estimator runs
below 0.5 on small folds, and a handful of splits is noisy — would put the threshold too low) and the sd
is floored at the Mann–Whitney null sd for the numbers of users, and rescaled when a check compares a
different number of rows. A check compares the
reference sample with as many current rows (at most), drawn per cutoff offset in the sample's proportions;
the null sd is rescaled from the halves' numbers of users to the check's (an AUC's null sd goes as
sqrt(1/n + 1/m)).
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
    """Cross-validated ROC-AUC of a classifier separating ``current`` (1) from ``reference`` (0) rows.

    LightGBM (small trees, one thread, deterministic) on the codes; folds group rows by user (reference
    and current users are distinct people, their group ids are kept apart) and hold both classes; the
    AUC is computed within each fold and averaged, weighted by fold size.
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
    # users of each class dealt over the folds separately (each fold holds both classes in proportion)
    fold = np.empty(len(y), dtype=np.int64)
    for cls in (0, 1):
        fold[y == cls] = group_folds(groups[y == cls], k, seed + cls)
    aucs, weights = [], []
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
        auc = roc_auc(y[test], booster.predict(x[test]))
        if np.isfinite(auc):
            aucs.append(auc)
            weights.append(int(test.sum()))
    # AUC within each fold, averaged: pooling out-of-fold scores across folds whose training class shares
    # differ biases a null AUC below 0.5
    return float(np.average(aucs, weights=weights)) if aucs else 0.5


def _null_sd(n_users_a: int, n_users_b: int) -> float:
    """Mann–Whitney null sd of an AUC between ``n_users_a`` and ``n_users_b`` independent units."""
    a, b = max(n_users_a, 1), max(n_users_b, 1)
    return float(np.sqrt((a + b + 1) / (12.0 * a * b)))


def calibrate_domain(codes: np.ndarray, groups: np.ndarray, cfg: MonitorConfig, seed: int) -> dict[str, Any]:
    """Null AUCs of reference-vs-reference halves of the sample (users split at random), their mean and
    sd (floored at the Mann–Whitney null sd for the halves' numbers of users)."""
    users = np.unique(groups)
    rng = np.random.default_rng(seed)
    aucs = []
    for r in range(cfg.domain_splits):
        half = rng.permutation(users)[: users.size // 2]
        in_a = np.isin(groups, half)
        aucs.append(
            cross_validated_auc(
                codes[in_a], groups[in_a], codes[~in_a], groups[~in_a], cfg.domain_folds, seed + r
            )
        )
    u_a, u_b = users.size // 2, users.size - users.size // 2
    null = {
        "null_aucs": [float(a) for a in aucs],
        "null_mean": float(np.mean(aucs)),
        "null_sd": max(float(np.std(aucs, ddof=1)), _null_sd(u_a, u_b)),
        "null_users": [int(u_a), int(u_b)],
    }
    # the threshold for halves of the sample; a check rescales it to its numbers of users
    return {**null, "threshold": domain_threshold(null, u_a, u_b, cfg.domain_z)}


def domain_threshold(domain: dict[str, Any], ref_users: int, cur_users: int, z: float) -> float:
    """The null mean (floored at 0.5) + z × the null sd rescaled from the calibration halves' numbers of
    users to a check's (an AUC's null sd goes as sqrt(1/n + 1/m)), floored at the Mann–Whitney sd for the
    check's users."""
    u_a, u_b = domain["null_users"]
    scale = np.sqrt((1 / max(ref_users, 1) + 1 / max(cur_users, 1)) / (1 / u_a + 1 / u_b))
    sd = max(float(domain["null_sd"]) * float(scale), _null_sd(ref_users, cur_users))
    return max(float(domain["null_mean"]), 0.5) + z * sd


def domain_check(
    domain: dict[str, Any],
    n_columns: int,
    current: np.ndarray,
    cur_groups: np.ndarray,
    cur_offsets: np.ndarray,
    cfg: MonitorConfig,
    seed: int,
) -> DomainResult | None:
    """The reference sample vs as many current rows (at most), drawn per offset in the reference sample's
    proportions; ``None`` when no offset matches."""
    codes = decode_codes(domain["codes"], n_columns)
    groups = np.asarray(domain["groups"], dtype=np.int64)
    offsets = np.asarray(domain["offsets"], dtype=np.int64)
    rng = np.random.default_rng(seed)
    common = np.intersect1d(offsets, cur_offsets)
    if common.size == 0:
        return None
    ref_at = {o: np.flatnonzero(offsets == o) for o in common}
    cur_at = {o: np.flatnonzero(cur_offsets == o) for o in common}
    share = min(1.0, min(cur_at[o].size / ref_at[o].size for o in common))
    ref_idx = np.sort(np.concatenate([ref_at[o] for o in common]))
    cur_idx = np.sort(
        np.concatenate([rng.choice(cur_at[o], round(share * ref_at[o].size), replace=False) for o in common])
    )
    if ref_idx.size < 10 or cur_idx.size < 10:
        return None
    auc = cross_validated_auc(
        codes[ref_idx], groups[ref_idx], current[cur_idx], cur_groups[cur_idx], cfg.domain_folds, seed
    )
    ref_users, cur_users = np.unique(groups[ref_idx]).size, np.unique(cur_groups[cur_idx]).size
    threshold = domain_threshold(domain, ref_users, cur_users, cfg.domain_z)
    return DomainResult(
        auc=auc,
        threshold=threshold,
        drift=bool(auc > threshold),
        n_reference_rows=int(ref_idx.size),
        n_current_rows=int(cur_idx.size),
        null_aucs=[float(a) for a in domain["null_aucs"]],
    )
