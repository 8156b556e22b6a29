"""Offline execution: features for every (user, cutoff) row of a cutoffs frame (e.g. the labels key).

The algorithm (the "roll-ups computed once serve every cutoff" idea, exact for any cutoff instant):

1. For every user, the boundaries ``T - o`` for each cutoff T and each window offset o (0, w, 2w days)
   cut time into segments ``[previous boundary, boundary)``; each event falls in exactly one segment
   (the first boundary strictly after its ts), events after a user's last boundary are dropped.
2. Events of a segment sharing all :data:`~churnflow.features.columns.ROLLUP_KEYS` collapse into one
   roll-up row; the :data:`~churnflow.features.measures.MEASURES` are compiled over roll-up rows (every
   aggregation is a sum, max or min, so this changes nothing) and aggregated per segment, together with
   the distinct-count "first occurrence" streams and the session pieces.
3. Cumulative sums / maxima / minima over each user's segments give "everything with ts < b" at every
   boundary b; a window ``[T - w, T)`` is the difference of two such values: exact integer arithmetic.
4. The feature formulas run once over the (cutoff × window) frame.

Invariant: a value at cutoff T only ever reads segments ending at or before T, i.e. events with ts < T.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

import numpy as np
import polars as pl

from churnflow.config.features import FeaturesConfig
from churnflow.features.columns import (
    DAY_MS,
    ROLLUP_KEYS,
    TS_BITS,
    TS_COLUMNS,
    TS_LIMIT,
    VALUE_COLUMNS,
    FeatureInputError,
    as_string,
    check_event_columns,
    check_ts,
    epoch_ms,
    event_columns,
    key_columns,
)
from churnflow.features.formulas import feature_exprs
from churnflow.features.measures import (
    MEASURES,
    PSEUDO_STREAMS,
    measures,
    sum_measure_names,
    window_offsets,
)
from churnflow.features.registry import feature_names

#: Odd 64-bit multiplier mixing the user index into the hashed stream keys (one group key per
#: (user, value); a bijection of the hash within one user).
_USER_MIX: Final[int] = 0x9E3779B97F4A7C15
_I64_MIN: Final[int] = -(2**63)
_I64_MAX: Final[int] = 2**63 - 1


def normalize_cutoffs(cutoffs: pl.DataFrame) -> pl.DataFrame:
    """Validate (user_id, cutoff) rows; return them with cutoff as Datetime(ms, UTC) plus ``T`` (epoch ms)."""
    for col in ("user_id", "cutoff"):
        if col not in cutoffs.columns:
            raise FeatureInputError(f"cutoffs: missing column '{col}' (have {cutoffs.columns})")
    dtype = cutoffs.schema["cutoff"]
    if not isinstance(dtype, pl.Datetime):
        raise FeatureInputError(f"cutoffs.cutoff: expected a Datetime column, got {dtype}")
    cut = pl.col("cutoff")
    if dtype.time_zone is None:
        cut = cut.dt.replace_time_zone("UTC")
    out = cutoffs.select(
        pl.col("user_id").cast(pl.String),
        cut.dt.convert_time_zone("UTC").dt.cast_time_unit("ms").alias("cutoff"),
    ).with_columns(T=pl.col("cutoff").dt.epoch("ms"))
    bad = out.with_row_index("row").filter(pl.col("user_id").is_null() | pl.col("cutoff").is_null())
    if bad.height:
        raise FeatureInputError(f"cutoffs: null user_id or cutoff at row {bad['row'][0]}")
    return out


def prepare_events(events: pl.LazyFrame, users: pl.DataFrame) -> pl.LazyFrame:
    """The :func:`~churnflow.features.columns.event_columns` of the events of ``users`` (user_id, uid).

    Adds ``uid`` and ``key`` (uid << 42 | ts). Raises :class:`FeatureInputError` (missing column, wrong
    dtype, null or out-of-range ts).
    """
    schema = events.collect_schema()
    check_event_columns(schema)
    ts = epoch_ms("ts", schema["ts"])
    stats = events.select(
        ts.min().alias("ts_min"), ts.max().alias("ts_max"), pl.col("ts").null_count().alias("ts_nulls")
    ).collect()
    check_ts(stats["ts_nulls"][0], stats["ts_min"][0], stats["ts_max"][0])
    return (
        events.select(as_string("user_id", schema["user_id"]), **event_columns(schema))
        .join(users.lazy(), on="user_id", how="inner")
        .drop("user_id")
        .with_columns(key=pl.col("uid") * TS_LIMIT + pl.col("ts_ms"))
    )


def boundaries(cut: pl.DataFrame, cfg: FeaturesConfig) -> pl.DataFrame:
    """Per-user segment boundaries ``T - o days``: (seg, uid, b), sorted by (uid, b), seg = row index."""
    offsets = window_offsets(cfg)
    return (
        cut.select("uid", "T")
        .unique()
        .join(pl.DataFrame({"o": offsets}, schema={"o": pl.Int64}), how="cross")
        .select("uid", b=pl.col("T") - pl.col("o") * DAY_MS)
        .unique()
        .sort("uid", "b")
        .with_row_index("seg")
        .with_columns(pl.col("seg").cast(pl.Int64))
    )


def _segment_assigner(bnd: pl.DataFrame) -> pl.Expr:
    """Expression: segment index of each event key (first boundary > ts of the same user), else -1.

    ``bnd`` is sorted by (uid, b) (:func:`boundaries`), so its keys are sorted for the binary search.
    """
    keys = (bnd["uid"] * TS_LIMIT + bnd["b"]).to_numpy()

    def assign(s: pl.Series) -> pl.Series:
        k = s.to_numpy()
        if keys.size == 0:
            return pl.Series(np.full(k.shape, -1, dtype=np.int64))
        idx = np.searchsorted(keys, k, side="right")
        capped = np.minimum(idx, keys.size - 1)
        ok = (idx < keys.size) & ((keys[capped] >> TS_BITS) == (k >> TS_BITS))
        return pl.Series(np.where(ok, idx, -1).astype(np.int64))

    return pl.col("key").map_batches(assign, return_dtype=pl.Int64, is_elementwise=True)


def _event_col(name: str) -> pl.Expr:
    """An event column of the prepared events: stored, or derived from ts (``TS_COLUMNS``)."""
    derived = TS_COLUMNS.get(name)
    return pl.col(name) if derived is None else derived.polars(pl.col).alias(name)


@lru_cache(maxsize=1)
def _rollup_plan() -> tuple[dict[str, pl.Expr], dict[str, pl.Expr]]:
    """(aggregations turning events into roll-up rows, each measure's value per roll-up row).

    A roll-up row stands for the events of one segment that share every :data:`ROLLUP_KEYS`; a value
    column c (:data:`VALUE_COLUMNS`) becomes its aggregate ``c__<agg>`` over those events. A summed
    measure's value must be a value column itself (sum of sums); a max/min measure's value may read one
    value column, non-decreasing in it (max of ``ts * 2**k + code`` = ``max(ts) * 2**k + code``); a
    condition reads no value column.
    """
    aggs: dict[str, pl.Expr] = {"n__sum": pl.len().cast(pl.Int64)}
    rows: dict[str, pl.Expr] = {}
    for m in MEASURES:
        values = m.value.columns() & VALUE_COLUMNS
        exact = len(values) <= 1 and not (m.columns - m.value.columns()) & VALUE_COLUMNS
        if not exact or (m.agg == "sum" and values != m.value.columns()):
            raise ValueError(f"measure {m.name}: its value cannot be rolled up exactly")

        def col(name: str, agg: str = m.agg) -> pl.Expr:
            if name not in VALUE_COLUMNS:
                return pl.col(name).cast(pl.Int64)
            if f"{name}__{agg}" not in aggs:
                aggs[f"{name}__{agg}"] = getattr(_event_col(name), agg)()
            return pl.col(f"{name}__{agg}")

        rows[m.name] = m.polars(col)
    return aggs, rows


def segment_partials(base: pl.DataFrame, bnd: pl.DataFrame) -> pl.DataFrame:
    """Every measure aggregated per segment (rows = all boundaries; sums 0, extrema null when empty).

    ``base``: prepared events with a valid ``seg`` column.
    """
    rollup_aggs, measure_rows = _rollup_plan()
    lazy = base.lazy()
    plans: list[pl.LazyFrame] = [lazy.group_by("seg", *map(_event_col, ROLLUP_KEYS)).agg(**rollup_aggs)]
    user_mix = (pl.col("uid").cast(pl.UInt64) * _USER_MIX).reinterpret(signed=True)
    for stream in PSEUDO_STREAMS:  # count of first occurrences of each (user, value) per segment
        firsts = (
            lazy.filter(pl.col(stream.key).is_not_null()).group_by(key=pl.col(stream.key) ^ user_mix)
            if stream.hashed  # one 64-bit key per (user, hash)
            else lazy.group_by("uid", _event_col(stream.key))
        )
        plans.append(
            firsts.agg(pl.col("seg").min()).group_by("seg").agg(pl.len().cast(pl.Int64).alias(stream.measure))
        )
    sessions = lazy.group_by("uid", "session_id").agg(start=pl.col("ts_ms").min(), seg=pl.col("seg").min())
    gap = pl.col("start") - pl.col("start").shift(1)
    plans.append(
        sessions.sort("uid", "start")
        .with_columns(gap=pl.when(pl.col("uid") == pl.col("uid").shift(1)).then(gap).otherwise(None))
        .group_by("seg")
        .agg(
            session_gap_ms=pl.col("gap").sum().cast(pl.Int64),
            session_gaps=pl.col("gap").is_not_null().sum().cast(pl.Int64),
        )
    )
    same = (pl.col("uid") == pl.col("uid").shift(1)) & pl.col("session_id").eq_missing(
        pl.col("session_id").shift(1)
    )  # a null session id is one session, as in the sessions stream
    plans.append(
        lazy.group_by("uid", "session_id", "seg")
        .agg(lo=pl.col("ts_ms").min(), hi=pl.col("ts_ms").max())
        .sort("uid", "session_id", "seg")
        .with_columns(
            contrib=pl.when(same)
            .then(pl.col("hi") - pl.col("hi").shift(1))
            .otherwise(pl.col("hi") - pl.col("lo"))
        )
        .group_by("seg")
        .agg(session_ms=pl.col("contrib").sum().cast(pl.Int64))
    )
    rollup, *parts = [plan.collect() for plan in plans]
    rows = rollup.lazy().with_columns(**key_columns(pl.col)).select("seg", **measure_rows)
    aggregated = rows.group_by("seg").agg(getattr(pl.col(m.name), m.agg)() for m in MEASURES).collect()
    out = bnd
    for part in [aggregated, *parts]:
        out = out.join(part, on="seg", how="left")
    return out.sort("seg").with_columns(pl.col(sum_measure_names()).fill_null(0))


def _running(name: str, agg: str) -> pl.Expr:
    """Per-user running sum / max / min of a measure over its segments (nulls: no event yet)."""
    if agg == "sum":
        return pl.col(name).cum_sum().over("uid")
    fill = _I64_MIN if agg == "max" else _I64_MAX
    return getattr(pl.col(name).fill_null(fill), f"cum_{agg}")().over("uid").replace(fill, None).alias(name)


def cumulative(partials: pl.DataFrame) -> pl.DataFrame:
    """Per-user running totals over segments: at boundary b, the value over all events with ts < b."""
    return partials.select(
        "uid",
        "b",
        *[_running(m, "sum") for m in sum_measure_names()],
        *[_running(m.name, m.agg) for m in MEASURES if m.agg != "sum"],
    )


def window_frame(cum: pl.DataFrame, cut: pl.DataFrame, cfg: FeaturesConfig) -> pl.DataFrame:
    """(uid, T) rows with ``<m>__all``, ``<m>__<w>d``, ``<m>__p<w>d`` and the extrema at T."""
    sums = sum_measure_names()
    extrema = [m.name for m in (*measures("max"), *measures("min"))]
    frame = cut.select("uid", "T").unique()
    for o in window_offsets(cfg):
        cols = sums if o else [*sums, *extrema]
        right = cum.select(
            "uid", pl.col("b").alias("_b"), *[pl.col(m).alias(m if o == 0 else f"{m}@{o}") for m in cols]
        )
        frame = frame.with_columns(_b=pl.col("T") - o * DAY_MS).join(right, on=["uid", "_b"], how="left")
        frame = frame.drop("_b")
    exprs: list[pl.Expr] = [pl.col(m).alias(f"{m}__all") for m in sums]
    for w in cfg.windows_days:
        for m in sums:
            exprs.append((pl.col(m) - pl.col(f"{m}@{w}")).alias(f"{m}__{w}d"))
            exprs.append((pl.col(f"{m}@{w}") - pl.col(f"{m}@{2 * w}")).alias(f"{m}__p{w}d"))
    return frame.select("uid", "T", *exprs, *extrema)


def compute_feature_frame(
    events: pl.DataFrame | pl.LazyFrame, cutoffs: pl.DataFrame, cfg: FeaturesConfig
) -> pl.DataFrame:
    """Features for the distinct (user_id, T) of normalised ``cutoffs``: user_id, T, features."""
    cut = cutoffs.select("user_id", "T").unique()
    users = (
        cut.select("user_id")
        .unique()
        .sort("user_id")
        .with_row_index("uid")
        .with_columns(pl.col("uid").cast(pl.Int64))
    )
    cut = cut.join(users, on="user_id")
    bad = cut.filter((pl.col("T") < 0) | (pl.col("T") >= TS_LIMIT))
    if bad.height:
        raise FeatureInputError(f"cutoffs.cutoff: out of range for user {bad['user_id'][0]!r}")
    prepared = prepare_events(events.lazy(), users)
    bnd = boundaries(cut, cfg)
    base = prepared.with_columns(seg=_segment_assigner(bnd)).filter(pl.col("seg") >= 0).drop("key").collect()
    frame = window_frame(cumulative(segment_partials(base, bnd)), cut, cfg)
    return frame.join(users, on="uid").select("user_id", "T", *feature_exprs(cfg))


def compute_features(
    events: pl.DataFrame | pl.LazyFrame, cutoffs: pl.DataFrame, cfg: FeaturesConfig
) -> pl.DataFrame:
    """Point-in-time features for each row of ``cutoffs`` (user_id, cutoff).

    Inputs: events with ``churnflow.data.schema.EVENT_COLUMNS`` (eager or lazy, any row order);
    cutoffs with ``user_id`` and a Datetime ``cutoff``. Output: ``user_id``, ``cutoff`` (Datetime ms UTC),
    then the registry's float64 features; one row per input row, in input order. Features at a cutoff T
    use only events with ``ts < T``; users without events get zero counts and null ratios/recencies.
    """
    cut = normalize_cutoffs(cutoffs)
    names = feature_names(cfg)
    if cut.height == 0:
        return pl.DataFrame(
            schema={
                "user_id": pl.String,
                "cutoff": pl.Datetime("ms", "UTC"),
                **dict.fromkeys(names, pl.Float64),
            }
        )
    frame = compute_feature_frame(events, cut, cfg)
    return cut.join(frame, on=["user_id", "T"], how="left", maintain_order="left").select(
        "user_id", "cutoff", *names
    )
