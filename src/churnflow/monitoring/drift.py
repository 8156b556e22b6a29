"""Drift reference and drift check: Population Stability Index (PSI) per feature and for the model score.

The reference holds, per monitored column, bins taken from the training data (quantile edges for numeric
columns, the most frequent values for categorical ones) with the share of rows in each bin and the share
of nulls. A check bins new data with the *same* edges and compares shares:

    PSI = Σ_bins (current − reference) · ln(current / reference)

over the value bins plus one null bin, each share floored at ``cfg.psi_epsilon`` so that empty bins stay
finite. Every term is ≥ 0 (both factors share a sign), so PSI ≥ 0, and PSI = 0 for identical shares.
Nothing here reads or writes files: callers pass frames and get plain dicts / dataclasses back.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from churnflow.config.monitor import MonitorConfig
from churnflow.data.schema import CANCEL_CONFIRMATION_PAGE

#: Version of the reference JSON layout; bumped on any incompatible change.
REFERENCE_VERSION = 1
#: Name of the model-score entry in reports (it is not a feature column).
SCORE_NAME = "churn_probability"
#: Bucket for categorical values outside the reference's most frequent ones.
OTHER_CATEGORY = "__other__"
#: Status values, mildest first.
STATUSES: tuple[str, ...] = ("ok", "warn", "alert")


class DriftInputError(ValueError):
    """Bad input to the drift functions; the message names the field or column at fault."""


@dataclass(frozen=True)
class ColumnDrift:
    """Drift of one column (a feature or the score): PSI, its status and the compared bin shares.

    ``reference_shares`` / ``current_shares`` are aligned: one entry per value bin, then the null bin.
    ``ks_binned`` is the largest gap between the two cumulative bin shares (a binned KS statistic).
    """

    name: str
    kind: str
    psi: float
    status: str
    ks_binned: float
    null_share_reference: float
    null_share_current: float
    bin_labels: list[str]
    reference_shares: list[float]
    current_shares: list[float]


@dataclass(frozen=True)
class DriftReport:
    """Result of :func:`check_drift`; ``status`` is the worst status over the features and the score."""

    status: str
    n_rows: int
    n_reference: int
    psi_warn: float
    psi_alert: float
    features: list[ColumnDrift]
    score: ColumnDrift

    def counts(self) -> dict[str, int]:
        """Number of features per status (``ok``/``warn``/``alert``), the score excluded."""
        return {s: sum(f.status == s for f in self.features) for s in STATUSES}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict: ``features`` maps name → drift, ordered by descending PSI then name."""
        ordered = sorted(self.features, key=lambda f: (-f.psi, f.name))
        return {
            "status": self.status,
            "n_rows": self.n_rows,
            "n_reference": self.n_reference,
            "thresholds": {"psi_warn": self.psi_warn, "psi_alert": self.psi_alert},
            "counts": self.counts(),
            "median_feature_psi": float(np.median([f.psi for f in self.features])),
            "features": {f.name: asdict(f) for f in ordered},
            "score": asdict(self.score),
        }


# --------------------------------------------------------------------------------------------- helpers
def validate_monitor_config(cfg: MonitorConfig) -> None:
    """Raise :class:`DriftInputError` naming the ``monitor.*`` field that makes the config unusable."""
    if cfg.psi_bins < 2:
        raise DriftInputError(f"monitor.psi_bins must be ≥ 2, got {cfg.psi_bins}")
    if not 0 < cfg.psi_warn <= cfg.psi_alert:
        raise DriftInputError(
            f"monitor.psi_warn ({cfg.psi_warn}) must be > 0 and ≤ monitor.psi_alert ({cfg.psi_alert})"
        )
    if not 0 < cfg.psi_epsilon < 1:
        raise DriftInputError(f"monitor.psi_epsilon must be in (0, 1), got {cfg.psi_epsilon}")
    if cfg.n_features < 1:
        raise DriftInputError(f"monitor.n_features must be ≥ 1, got {cfg.n_features}")
    if cfg.reference_split not in ("train", "all"):
        raise DriftInputError(
            f"monitor.reference_split must be 'train' or 'all', got {cfg.reference_split!r}"
        )
    if cfg.score_rows not in ("test", "reference"):
        raise DriftInputError(f"monitor.score_rows must be 'test' or 'reference', got {cfg.score_rows!r}")
    if cfg.cutoff not in ("export_end", "user_last_event"):
        raise DriftInputError(f"monitor.cutoff must be 'export_end' or 'user_last_event', got {cfg.cutoff!r}")
    if cfg.max_categories < 1:
        raise DriftInputError(f"monitor.max_categories must be ≥ 1, got {cfg.max_categories}")


def psi(reference: np.ndarray, current: np.ndarray, epsilon: float) -> float:
    """PSI between two aligned share vectors (each floored at ``epsilon``); always ≥ 0."""
    ref = np.maximum(np.asarray(reference, dtype=np.float64), epsilon)
    cur = np.maximum(np.asarray(current, dtype=np.float64), epsilon)
    if ref.shape != cur.shape:
        raise DriftInputError(f"PSI needs aligned bins, got {ref.shape} and {cur.shape}")
    terms = (cur - ref) * np.log(cur / ref)
    return float(np.maximum(terms, 0.0).sum())  # each term is ≥ 0 mathematically; clip rounding noise


def psi_status(value: float, cfg: MonitorConfig) -> str:
    """``alert`` if ``value ≥ psi_alert``, ``warn`` if ``≥ psi_warn``, else ``ok``."""
    if value >= cfg.psi_alert:
        return "alert"
    if value >= cfg.psi_warn:
        return "warn"
    return "ok"


def _is_numeric(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or dtype == pl.Boolean


def _numeric_values(series: pl.Series) -> tuple[np.ndarray, int]:
    """Finite values as float64 and the count of nulls (null, NaN and ±inf count as null)."""
    values = series.cast(pl.Float64).to_numpy()
    finite = values[np.isfinite(values)]
    return finite, int(values.shape[0] - finite.shape[0])


def _category_values(series: pl.Series) -> tuple[pl.Series, int]:
    """Non-null values as strings and the count of nulls."""
    as_text = series.cast(pl.String).alias("value")
    return as_text.drop_nulls(), int(as_text.null_count())


def build_column_bins(series: pl.Series, cfg: MonitorConfig) -> dict[str, Any]:
    """Reference bins of one column.

    Numeric: ``edges`` (unique quantiles of the non-null values at levels 1/k … (k−1)/k, k =
    ``cfg.psi_bins``), bins right-closed ``(-inf, e1], (e1, e2], …, (e_last, inf)``, ``shares`` of the
    non-null values per bin (sum 1). Categorical: ``categories`` (up to ``cfg.max_categories`` most
    frequent, ties by value) plus :data:`OTHER_CATEGORY`. Both carry ``null_share`` and ``n``.
    """
    n = series.len()
    if n == 0:
        raise DriftInputError(f"column {series.name!r}: no rows to build a reference from")
    if _is_numeric(series.dtype):
        values, n_null = _numeric_values(series)
        values = np.sort(values)  # row order must not change any float (mean included)
        if values.size:
            levels = np.arange(1, cfg.psi_bins) / cfg.psi_bins
            edges = np.unique(np.quantile(values, levels, method="inverted_cdf"))
            counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=edges.size + 1)
            shares = counts / values.size
        else:
            edges, shares = np.empty(0), np.ones(1)
        return {
            "kind": "numeric",
            "edges": [float(e) for e in edges],
            "shares": [float(s) for s in shares],
            "null_share": n_null / n,
            "n": n,
            "mean": float(values.mean()) if values.size else None,
        }
    text, n_null = _category_values(series)
    freq = text.value_counts(name="count").sort(["count", text.name], descending=[True, False])
    categories = freq[text.name].head(cfg.max_categories).to_list()
    shares = _category_shares(text, categories)
    return {
        "kind": "categorical",
        "categories": categories,
        "shares": [float(s) for s in shares],
        "null_share": n_null / n,
        "n": n,
    }


def _category_shares(text: pl.Series, categories: list[str]) -> np.ndarray:
    """Shares of ``text`` per category in order, then the :data:`OTHER_CATEGORY` share (sum 1)."""
    if text.len() == 0:
        return np.array([0.0] * len(categories) + [1.0])
    counts = dict(text.value_counts(name="count").iter_rows())
    known = np.array([counts.get(c, 0) for c in categories], dtype=np.float64)
    other = text.len() - known.sum()
    return np.append(known, other) / text.len()


def _full_shares(bins: Mapping[str, Any]) -> np.ndarray:
    """Reference shares over the value bins (scaled by the non-null share) plus the null bin."""
    null_share = float(bins["null_share"])
    return np.append(np.asarray(bins["shares"], dtype=np.float64) * (1.0 - null_share), null_share)


def current_shares(series: pl.Series, bins: Mapping[str, Any]) -> np.ndarray:
    """Shares of ``series`` over the reference ``bins`` (value bins, then the null bin; sum 1)."""
    n = series.len()
    if n == 0:
        raise DriftInputError(f"column {series.name!r}: no rows to check")
    if bins["kind"] == "numeric":
        if not _is_numeric(series.dtype):
            raise DriftInputError(f"column {series.name!r}: reference is numeric, got dtype {series.dtype}")
        values, n_null = _numeric_values(series)
        edges = np.asarray(bins["edges"], dtype=np.float64)
        counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=edges.size + 1)
        return np.append(counts / n, n_null / n)
    text, n_null = _category_values(series)
    value_shares = _category_shares(text, list(bins["categories"])) * (text.len() / n)
    return np.append(value_shares, n_null / n)


def bin_labels(bins: Mapping[str, Any]) -> list[str]:
    """Human-readable labels of the reference bins, the null bin last."""
    if bins["kind"] == "numeric":
        edges = [f"{e:.4g}" for e in bins["edges"]]
        bounds = ["-inf", *edges, "inf"]
        return [f"({lo}, {hi}]" for lo, hi in itertools.pairwise(bounds)] + ["null"]
    return [*bins["categories"], OTHER_CATEGORY, "null"]


def compare_column(name: str, series: pl.Series, bins: Mapping[str, Any], cfg: MonitorConfig) -> ColumnDrift:
    """PSI, status and binned KS of ``series`` against its reference ``bins``."""
    ref = _full_shares(bins)
    cur = current_shares(series, bins)
    value = psi(ref, cur, cfg.psi_epsilon)
    ks = float(np.abs(np.cumsum(cur[:-1]) - np.cumsum(ref[:-1])).max()) if ref.size > 1 else 0.0
    return ColumnDrift(
        name=name,
        kind=str(bins["kind"]),
        psi=value,
        status=psi_status(value, cfg),
        ks_binned=ks,
        null_share_reference=float(bins["null_share"]),
        null_share_current=float(cur[-1]),
        bin_labels=bin_labels(bins),
        reference_shares=[float(x) for x in ref],
        current_shares=[float(x) for x in cur],
    )


def _check_columns(features: pl.DataFrame, names: Sequence[str], where: str) -> None:
    missing = [c for c in names if c not in features.columns]
    if missing:
        raise DriftInputError(f"{where}: feature column(s) missing from the frame: {missing}")


def _score_series(scores: np.ndarray, n_rows: int | None) -> pl.Series:
    """Scores as a Series; ``n_rows`` (if given) is the number of feature rows they must align with."""
    arr = np.asarray(scores, dtype=np.float64).ravel()
    if n_rows is not None and arr.shape[0] != n_rows:
        raise DriftInputError(f"scores: {arr.shape[0]} values for {n_rows} feature rows")
    if arr.shape[0] == 0:
        raise DriftInputError("scores: no model scores given")
    finite = arr[np.isfinite(arr)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        raise DriftInputError("scores: churn probabilities must lie in [0, 1]")
    return pl.Series(SCORE_NAME, arr)


# ------------------------------------------------------------------------------------------ public API
def select_monitored_features(
    feature_names: Sequence[str], importance: Mapping[str, float] | None, n_features: int
) -> list[str]:
    """The ``n_features`` most important features (ties by name), or all of them when no importance.

    Names absent from ``importance`` rank last (importance 0); the result keeps no duplicates.
    """
    names = list(dict.fromkeys(feature_names))
    if not importance:
        return names
    ranked = sorted(names, key=lambda f: (-float(importance.get(f, 0.0)), f))
    return ranked[:n_features]


def monitoring_cutoffs(
    events: pl.DataFrame, mode: str = "export_end", active_days: int | None = None
) -> pl.DataFrame:
    """Users to monitor, one row each (sorted by ``user_id``): ``user_id``, ``cutoff`` (dtype of ``ts``).

    ``export_end``: one calendar cutoff for all, the export's last event ``ts`` + 1 ms, like the training
    cutoffs; only users the training population would hold at such a cutoff are kept: no cancellation
    confirmed and (if ``active_days`` is given) an event within ``active_days`` days before the cutoff.
    ``user_last_event``: every user at their own last event + 1 ms (what the online service does; recency
    features are then ~0, so they drift against a reference taken at calendar cutoffs).
    """
    for column in ("user_id", "ts"):
        if column not in events.columns:
            raise DriftInputError(f"events: column {column!r} is missing")
    if events.height == 0:
        raise DriftInputError("events: no logged-in user events to monitor")
    one_ms = pl.duration(milliseconds=1)
    if mode == "user_last_event":
        return events.group_by("user_id").agg(cutoff=pl.col("ts").max() + one_ms).sort("user_id")
    if mode != "export_end":
        raise DriftInputError(f"monitor.cutoff must be 'export_end' or 'user_last_event', got {mode!r}")
    end = events["ts"].max()
    users = events.group_by("user_id").agg(
        last=pl.col("ts").max(),
        cancelled=(pl.col("page").cast(pl.String) == CANCEL_CONFIRMATION_PAGE).any()
        if "page" in events.columns
        else pl.lit(False),
    )
    keep = ~pl.col("cancelled")
    if active_days is not None:
        keep &= pl.col("last") >= pl.lit(end, dtype=events.schema["ts"]) - pl.duration(days=active_days)
    kept = users.filter(keep)
    if kept.height == 0:
        raise DriftInputError("events: every user cancelled or went inactive before the export's end")
    end_expr = pl.lit(end, dtype=events.schema["ts"]) + one_ms
    return kept.select("user_id").sort("user_id").with_columns(cutoff=end_expr)


def latest_cutoffs(features: pl.DataFrame, n: int) -> list[datetime]:
    """The ``n`` latest distinct values of ``features['cutoff']`` (the model's test cutoffs), ascending."""
    if "cutoff" not in features.columns:
        raise DriftInputError("features: column 'cutoff' is missing")
    return sorted(features["cutoff"].unique().to_list())[-n:] if n > 0 else []


def cutoffs_from_meta(meta: Mapping[str, Any], key: str = "test") -> list[datetime] | None:
    """Cutoffs named in ``model_meta.json`` (``{key}_cutoffs`` or ``cutoffs.{key}``, ISO strings), if any."""
    raw = meta.get(f"{key}_cutoffs")
    if raw is None and isinstance(meta.get("cutoffs"), Mapping):
        raw = meta["cutoffs"].get(key)
    if not raw:
        return None
    try:
        return [v if isinstance(v, datetime) else datetime.fromisoformat(str(v)) for v in raw]
    except ValueError as err:
        raise DriftInputError(f"model_meta.json: {key} cutoffs are not ISO timestamps ({err})") from err


def importance_from_model(
    meta: Mapping[str, Any], native: Any, feature_names: Sequence[str]
) -> dict[str, float] | None:
    """Feature importance by name: ``meta['feature_importance']`` if stored, else gain from a LightGBM or
    XGBoost booster (``native``; positional names such as ``Column_3`` / ``f3`` map to
    ``feature_names[3]``), else ``None`` (e.g. logistic regression without stored importance)."""
    stored = meta.get("feature_importance")
    if isinstance(stored, Mapping) and stored:
        return {str(k): float(v) for k, v in stored.items()}
    if hasattr(native, "feature_importance"):  # lightgbm.Booster: gains in model column order
        gains = native.feature_importance(importance_type="gain")
        if len(gains) != len(feature_names):
            raise DriftInputError(f"model has {len(gains)} features, meta lists {len(feature_names)}")
        return {str(n): float(g) for n, g in zip(feature_names, gains, strict=True)}
    if hasattr(native, "get_score"):  # xgboost.Booster: only features used in a split appear
        scores = native.get_score(importance_type="gain")
        by_name: dict[str, float] = {}
        for key, value in scores.items():
            index = int(key[1:]) if key[:1] == "f" and key[1:].isdigit() else None
            name = feature_names[index] if index is not None and index < len(feature_names) else key
            by_name[name] = float(value)
        return by_name
    return None


def select_reference_rows(
    features: pl.DataFrame, exclude_cutoffs: Sequence[datetime], cfg: MonitorConfig
) -> pl.DataFrame:
    """Rows the reference is built from: every cutoff (``all``) or all but ``exclude_cutoffs`` (``train``)."""
    validate_monitor_config(cfg)
    if cfg.reference_split == "all" or not exclude_cutoffs:
        return features
    if "cutoff" not in features.columns:
        raise DriftInputError("features: column 'cutoff' is needed to leave out the test cutoffs")
    excluded = pl.Series(list(exclude_cutoffs)).cast(features.schema["cutoff"])
    kept = features.filter(~pl.col("cutoff").is_in(excluded.implode()))
    if kept.height == 0:
        raise DriftInputError("features: no rows left once the test cutoffs are left out")
    return kept


def select_score_rows(
    features: pl.DataFrame, test_cutoffs: Sequence[datetime], cfg: MonitorConfig
) -> pl.DataFrame:
    """Rows whose model scores form the score reference.

    ``test`` (default): rows at ``test_cutoffs`` — out-of-sample scores, as new data will get (a boosted
    model is over-confident on its own training rows, so in-sample scores would make the score drift
    always). ``reference``: the same rows as the feature reference (:func:`select_reference_rows`).
    """
    validate_monitor_config(cfg)
    if cfg.score_rows == "reference":
        return select_reference_rows(features, test_cutoffs, cfg)
    if not test_cutoffs:
        raise DriftInputError("monitor.score_rows=test needs the model's test cutoffs; none were found")
    wanted = pl.Series(list(test_cutoffs)).cast(features.schema["cutoff"])
    rows = features.filter(pl.col("cutoff").is_in(wanted.implode()))
    if rows.height == 0:
        raise DriftInputError("features: no rows at the model's test cutoffs (monitor.score_rows=test)")
    return rows


def build_drift_reference(
    features: pl.DataFrame,
    scores: np.ndarray,
    cfg: MonitorConfig,
    feature_names: list[str],
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Reference bins for ``feature_names`` (from ``features``) and for the model ``scores``.

    ``scores`` is a sample of model scores; it need not come from the ``features`` rows (the stage uses
    out-of-sample scores at the test cutoffs, see ``monitor.score_rows``). Returns a JSON-ready dict
    ``{version, n_rows, psi_bins, feature_names, features: {name: bins}, score: bins, meta}``; the same
    inputs give the same dict (row order does not matter).
    """
    validate_monitor_config(cfg)
    if not feature_names:
        raise DriftInputError("feature_names: no features to monitor")
    _check_columns(features, feature_names, "build_drift_reference")
    if features.height == 0:
        raise DriftInputError("features: the reference frame is empty")
    score = _score_series(scores, None)
    return {
        "version": REFERENCE_VERSION,
        "n_rows": features.height,
        "psi_bins": cfg.psi_bins,
        "feature_names": list(feature_names),
        "features": {name: build_column_bins(features[name], cfg) for name in feature_names},
        "score": build_column_bins(score, cfg),
        "meta": dict(meta or {}),
    }


def validate_reference(reference: Mapping[str, Any]) -> None:
    """Raise :class:`DriftInputError` naming the key that makes ``reference`` unusable."""
    for key in ("version", "n_rows", "feature_names", "features", "score"):
        if key not in reference:
            raise DriftInputError(f"drift reference: key {key!r} is missing")
    if reference["version"] != REFERENCE_VERSION:
        raise DriftInputError(
            f"drift reference: version {reference['version']!r}, this code reads {REFERENCE_VERSION}"
        )
    for name in [*reference["feature_names"], SCORE_NAME]:
        bins = reference["score"] if name == SCORE_NAME else reference["features"].get(name)
        if bins is None:
            raise DriftInputError(f"drift reference: no bins for feature {name!r}")
        needed = ("edges",) if bins.get("kind") == "numeric" else ("categories",)
        for key in ("kind", "shares", "null_share", *needed):
            if key not in bins:
                raise DriftInputError(f"drift reference: {name!r} lacks {key!r}")


def check_drift(
    reference: Mapping[str, Any], features: pl.DataFrame, scores: np.ndarray, cfg: MonitorConfig
) -> DriftReport:
    """Compare new ``features`` and ``scores`` (aligned rows) with ``reference``: PSI and status each."""
    validate_monitor_config(cfg)
    validate_reference(reference)
    names = list(reference["feature_names"])
    _check_columns(features, names, "check_drift")
    if features.height == 0:
        raise DriftInputError("features: no rows to check for drift")
    score = _score_series(scores, features.height)
    columns = [compare_column(n, features[n], reference["features"][n], cfg) for n in names]
    score_drift = compare_column(SCORE_NAME, score, reference["score"], cfg)
    worst = max((c.status for c in [*columns, score_drift]), key=STATUSES.index)
    return DriftReport(
        status=worst,
        n_rows=features.height,
        n_reference=int(reference["n_rows"]),
        psi_warn=cfg.psi_warn,
        psi_alert=cfg.psi_alert,
        features=columns,
        score=score_drift,
    )
