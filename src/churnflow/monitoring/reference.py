"""The drift reference: what the training data looked like, in a form every later check is counted over.

Built by the ``drift_baseline`` stage from the rows the final model was trained on (the split's
``development`` rows, every cutoff) and shipped with the served model. Like for like: each row keeps its
**cutoff offset** (days between the export's first UTC midnight and the cutoff); a check computes the
new export's features at the same offsets (see :mod:`churnflow.monitoring.windows`), so tenure,
all-time and recency features are compared at the same age.

Layout (``REFERENCE_VERSION``; JSON, written with sorted keys):

* ``feature_names``, ``offsets_days``, ``rows_per_offset``, ``n_rows``, ``n_users``;
* ``columns``: name → :class:`~churnflow.monitoring.profile.ColumnProfile` (cells, counts, coarse
  bins, null laws fitted on ``monitor.calibration_splits`` reference-vs-reference user splits);
* ``score``: the profile of the model's probability on *out-of-sample* rows at the same offsets (users
  held out of training), with its label-free estimate and realised AUC there;
* ``labels``: realised churners and rows per cutoff offset of the reference rows (``None`` without
  labels), for the label-shift test;
* ``domain``: a sample of reference rows as codes, their users and offsets, and the calibrated threshold
  of the domain classifier;
* ``online``: bins, shares and per-feature thresholds for the serving path's rolling score;
* ``settings`` (the monitor config it was built with) and ``meta``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from churnflow.config.evaluate import EvaluateConfig
from churnflow.config.monitor import MonitorConfig
from churnflow.monitoring.domain import calibrate_domain, encode_codes
from churnflow.monitoring.drift import calibrate_null_laws
from churnflow.monitoring.performance import (
    expected_roc_auc,
    fit_platt,
    recalibrate,
    roc_auc,
    targeting_value,
)
from churnflow.monitoring.profile import (
    ColumnProfile,
    DriftInputError,
    code_matrix,
    family_of,
    profile_column,
)

#: Version of the reference layout; bumped on any incompatible change.
REFERENCE_VERSION = 2
#: Name of the model-score column in reports (it is not a feature).
SCORE_NAME = "churn_probability"
#: Feature families left out of the online score: at request time the cutoff is the user's last event.
ONLINE_EXCLUDED_FAMILIES: tuple[str, ...] = ("recency",)
_DAY_MS = 86_400_000


def cutoff_offsets(cutoffs: pl.Series, day0: datetime) -> np.ndarray:
    """Whole days between ``day0`` (the export's first UTC midnight) and each cutoff."""
    start = pl.Series([day0]).cast(pl.Datetime("ms", "UTC"))[0]
    delta = cutoffs.cast(pl.Datetime("ms", "UTC")) - start
    return (delta.dt.total_milliseconds().to_numpy() // _DAY_MS).astype(np.int64)


def user_index(user_ids: pl.Series) -> np.ndarray:
    """Each row's user as an index 0 … users−1 (sorted user ids: same input → same indices)."""
    _, codes = np.unique(user_ids.cast(pl.String).to_numpy().astype(str), return_inverse=True)
    return codes.astype(np.int64)


def _check_keys(frame: pl.DataFrame, what: str) -> None:
    for column in ("user_id", "cutoff"):
        if column not in frame.columns:
            raise DriftInputError(f"{what}: column {column!r} is missing")
    if frame.height == 0:
        raise DriftInputError(f"{what}: no rows")


def _score_section(
    scores: np.ndarray,
    score_rows: pl.DataFrame,
    day0: datetime,
    cfg: MonitorConfig,
    business: EvaluateConfig,
    seed: int,
    source: str,
) -> dict[str, Any]:
    """Profile, null laws and performance reference of the out-of-sample scores."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.size != score_rows.height:
        raise DriftInputError(f"scores: {scores.size} values for {score_rows.height} score rows")
    if scores.size == 0 or not np.isfinite(scores).all() or scores.min() < 0 or scores.max() > 1:
        raise DriftInputError("scores: churn probabilities must be finite and lie in [0, 1]")
    series = pl.Series(SCORE_NAME, scores)
    profile = profile_column(series, cfg)
    users = user_index(score_rows["user_id"])
    codes = code_matrix(pl.DataFrame([series]), [profile])
    (profile,) = calibrate_null_laws([profile], codes, users, cfg, seed + 1)
    labels = score_rows["label"].to_numpy() if "label" in score_rows.columns else None
    known = labels is not None and not np.isnan(labels.astype(np.float64)).any()
    raw_mean = float(scores.mean())
    n_users = score_rows["user_id"].n_unique()
    if not known:
        calibration: dict[str, Any] = {"method": "none", "reason": "no labels"}
    elif n_users < cfg.recalibration_min_users:
        calibration = {"method": "none", "reason": f"{n_users} users < monitor.recalibration_min_users"}
    else:
        calibration = fit_platt(scores, labels, n_users)
    scores = recalibrate(scores, calibration)
    net = 0.0
    for _, part in score_rows.with_columns(pl.Series("_p", scores)).group_by("cutoff"):
        net += targeting_value(part["_p"].to_numpy(), None, business)[0]
    return {
        "expected_net_value_per_1000": net * 1000.0 / scores.size,
        "profile": profile.to_dict(),
        "rows": source,
        "n_rows": int(scores.size),
        "n_users": int(users.max() + 1),
        "offsets_days": sorted({int(o) for o in cutoff_offsets(score_rows["cutoff"], day0)}),
        "mean": raw_mean,
        "calibration": calibration,
        "estimated_auc": expected_roc_auc(scores),
        "realised_auc": roc_auc(labels, scores) if known else None,
        "positive_rate": float(np.mean(labels)) if known else None,
    }


def _label_section(frame: pl.DataFrame, offsets: np.ndarray) -> dict[str, Any] | None:
    """Realised churners and rows of the reference rows per cutoff offset (the label-shift test's
    reference); ``None`` when the rows carry no labels. At one offset a user has one row."""
    if "label" not in frame.columns:
        return None
    known = frame.select(pl.col("label").cast(pl.Float64)).with_columns(pl.Series("offset", offsets))
    known = known.filter(pl.col("label").is_not_null() & pl.col("label").is_not_nan())
    if known.height == 0:
        return None
    per_offset = known.group_by("offset").agg(pl.len().alias("rows"), pl.col("label").sum().alias("pos"))
    return {
        "source": "the reference rows' realised labels (development rows: known at the first test cutoff)",
        "by_offset": {
            str(int(o)): {"rows": int(n), "positives": int(k)}
            for o, n, k in per_offset.sort("offset").iter_rows()
        },
    }


def _domain_section(
    codes: np.ndarray, users: np.ndarray, offsets: np.ndarray, cfg: MonitorConfig, seed: int
) -> dict[str, Any]:
    """A seeded sample of reference rows (codes, users, offsets) and the classifier's null threshold."""
    rng = np.random.default_rng(seed + 2)
    take = np.sort(rng.choice(codes.shape[0], min(cfg.domain_rows, codes.shape[0]), replace=False))
    sample, groups = codes[take], users[take]
    return {
        "codes": encode_codes(sample),
        "groups": [int(g) for g in groups],
        "offsets": [int(o) for o in offsets[take]],
        **calibrate_domain(sample, groups, cfg, seed + 3),
    }


def one_row_per_user(frame: pl.DataFrame, seed: int) -> pl.DataFrame:
    """A seeded random row of each user (the shape of serving traffic: one request, one user)."""
    pick = np.random.default_rng(seed).random(frame.height)
    return (
        frame.with_columns(pl.Series("_r", pick))
        .sort(["user_id", "_r"])
        .unique("user_id", keep="first", maintain_order=True)
        .drop("_r")
    )


def online_section(
    profiles: Sequence[ColumnProfile], online: pl.DataFrame, cfg: MonitorConfig, seed: int, source: str
) -> dict[str, Any]:
    """Bins, reference shares and thresholds of the serving path's rolling score.

    ``online``: one row per user as the service sees it (features at the user's last event before a
    reference cutoff, or a random reference row per user). Watched: numeric features outside
    :data:`ONLINE_EXCLUDED_FAMILIES`. Shares are the coarse-bin shares of ``online``; a feature's threshold
    is the ``1 − monitor.online_alpha`` quantile of its PSI null law for a window of
    ``monitor.online_window`` rows against those shares, the law fitted on random halves of ``online``.
    """
    watched = [
        p for p in profiles if p.kind == "numeric" and family_of(p.name) not in ONLINE_EXCLUDED_FAMILIES
    ]
    rows = one_row_per_user(online, seed)
    codes = code_matrix(rows, watched)
    users = np.arange(rows.height, dtype=np.int64)
    calibrated = calibrate_null_laws(watched, codes, users, cfg, seed + 5) if watched else []
    edges, shares, thresholds = [], [], []
    for i, p in enumerate(calibrated):
        full = np.bincount(codes[:, i].astype(np.int64), minlength=p.n_cells + 1)[: p.n_cells + 1]
        coarse = p.coarse_counts(full.astype(np.float64))
        edges.append(list(p.edges))
        shares.append([float(s) for s in coarse / max(coarse.sum(), 1.0)])
        thresholds.append(p.null_laws["psi"].quantile(1 - cfg.online_alpha, rows.height, cfg.online_window))
    return {
        "features": [p.name for p in calibrated],
        "edges": edges,
        "shares": shares,
        "thresholds": thresholds,
        "window": cfg.online_window,
        "n_reference": rows.height,
        "alpha": cfg.online_alpha,
        "epsilon": cfg.psi_epsilon,
        "source": source,
    }


def build_reference(
    features: pl.DataFrame,
    feature_names: Sequence[str],
    day0: datetime,
    score_rows: pl.DataFrame,
    scores: np.ndarray,
    cfg: MonitorConfig,
    business: EvaluateConfig,
    seed: int,
    *,
    score_source: str = "held_out_users",
    online_features: pl.DataFrame | None = None,
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The reference of ``features`` (rows: ``user_id``, ``cutoff``, the features) for ``feature_names``.

    ``score_rows`` (``user_id``, ``cutoff``, optional ``label``) with ``scores`` are the out-of-sample
    rows the score reference is made of; ``online_features`` (optional) are features at the last event
    before reference cutoffs, for the online shares. Same inputs + seed → same dict.
    """
    _check_keys(features, "reference features")
    _check_keys(score_rows, "score rows")
    names = list(dict.fromkeys(feature_names))
    if not names:
        raise DriftInputError("feature_names: no features to monitor")
    missing = [n for n in names if n not in features.columns]
    if missing:
        raise DriftInputError(f"reference features: column(s) missing: {missing[:10]}")
    frame = features.sort(["cutoff", "user_id"])
    offsets = cutoff_offsets(frame["cutoff"], day0)
    if offsets.min() < 0:
        raise DriftInputError(f"reference features: a cutoff lies before the export's first day {day0}")
    users = user_index(frame["user_id"])
    profiles = [profile_column(frame[n], cfg) for n in names]
    codes = code_matrix(frame, profiles)
    profiles = calibrate_null_laws(profiles, codes, users, cfg, seed)
    online, online_source = (
        (online_features, "each sampled reference user's last event before a reference cutoff")
        if online_features is not None
        else (frame, "one random reference row per user")
    )
    uniq, counts = np.unique(offsets, return_counts=True)
    reference = {
        "version": REFERENCE_VERSION,
        "feature_names": names,
        "offsets_days": [int(o) for o in uniq],
        "rows_per_offset": {str(int(o)): int(c) for o, c in zip(uniq, counts, strict=True)},
        "n_rows": frame.height,
        "n_users": int(users.max() + 1),
        "columns": {p.name: p.to_dict() for p in profiles},
        "score": _score_section(scores, score_rows, day0, cfg, business, seed, score_source),
        "labels": _label_section(frame, offsets),
        "domain": _domain_section(codes, users, offsets, cfg, seed),
        "online": online_section(profiles, online, cfg, seed + 4, online_source),
        "settings": asdict(cfg),
        "meta": dict(meta or {}),
    }
    validate_reference(reference)
    return reference


def validate_reference(reference: Mapping[str, Any]) -> None:
    """Raise :class:`DriftInputError` naming the key that makes ``reference`` unusable."""
    if not isinstance(reference, Mapping):
        raise DriftInputError("drift reference: not a JSON object")
    if reference.get("version") != REFERENCE_VERSION:
        raise DriftInputError(
            f"drift reference: version {reference.get('version')!r}, this code reads {REFERENCE_VERSION} "
            "(re-run the drift_baseline stage)"
        )
    for key in ("feature_names", "offsets_days", "n_rows", "n_users", "columns", "score", "domain", "online"):
        if key not in reference:
            raise DriftInputError(f"drift reference: key {key!r} is missing")
    for name in reference["feature_names"]:
        if name not in reference["columns"]:
            raise DriftInputError(f"drift reference: no profile for feature {name!r}")
    for key in ("profile", "n_users", "estimated_auc"):
        if key not in reference["score"]:
            raise DriftInputError(f"drift reference: score lacks {key!r}")


def profiles_of(reference: Mapping[str, Any]) -> list[ColumnProfile]:
    """The feature profiles of a reference, in ``feature_names`` order."""
    return [ColumnProfile.from_dict(n, reference["columns"][n]) for n in reference["feature_names"]]


def score_profile(reference: Mapping[str, Any]) -> ColumnProfile:
    """The score column's profile."""
    return ColumnProfile.from_dict(SCORE_NAME, reference["score"]["profile"])
