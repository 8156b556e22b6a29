"""Point-in-time execution of :mod:`churnflow.features.definitions` over (user, cutoff) pairs.

The algorithm (the "roll-ups computed once serve every cutoff" idea, exact for any cutoff instant):

1. For every user, the boundaries ``T - o`` for each cutoff T and each window offset o (0, w, 2w days)
   cut time into segments ``[previous boundary, boundary)``; each event falls in exactly one segment
   (the first boundary strictly after its ts), events after a user's last boundary are dropped.
2. One pass over the events aggregates every measure per segment (plus distinct-count "first
   occurrence" streams and session pieces).
3. Cumulative sums / maxima / minima over each user's segments give "everything with ts < b" at every
   boundary b; a window ``[T - w, T)`` is the difference of two such values: exact integer arithmetic.
4. The feature expressions run once over the (cutoff × window) frame.

Invariant: a value at cutoff T only ever reads segments ending at or before T, i.e. events with ts < T.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Final

import numpy as np
import polars as pl

from churnflow.config.features import FeaturesConfig
from churnflow.features.definitions import (
    DAY_MS,
    PSEUDO_STREAMS,
    TS_BITS,
    evaluate_features,
    feature_exprs,
    location_code,
    measure_aggs,
    measure_row_exprs,
    rollup_aggs,
    rollup_keys,
    sum_measure_names,
    user_agent_code,
    window_offsets,
)

#: Event columns the definitions read.
REQUIRED_EVENT_COLUMNS: Final[tuple[str, ...]] = (
    "user_id",
    "ts",
    "session_id",
    "page",
    "level",
    "status",
    "length",
    "artist",
    "song",
    "gender",
    "location",
    "user_agent",
    "registration",
)
_TS_LIMIT: Final[int] = 1 << TS_BITS
#: Seed of the artist / (artist, song) hashes behind the distinct counts (a collision within one user's
#: catalogue, ~n²/2**65 for n distinct songs, would merge two songs).
HASH_SEED: Final[int] = 20_181_001
#: Odd 64-bit multiplier mixing the user index into those hashes (one group key per (user, value)).
_USER_MIX: Final[int] = 0x9E3779B97F4A7C15
_I64_MIN: Final[int] = -(2**63)
_I64_MAX: Final[int] = 2**63 - 1


class FeatureInputError(ValueError):
    """Events or cutoffs that the feature engine cannot use; the message names the field."""


def _epoch_ms(name: str, dtype: pl.DataType) -> pl.Expr:
    """A datetime (any unit/zone) or integer epoch-ms column as int64 epoch milliseconds."""
    if isinstance(dtype, pl.Datetime):
        return pl.col(name).dt.epoch("ms")
    if dtype.is_integer():
        return pl.col(name).cast(pl.Int64)
    raise FeatureInputError(f"events.{name}: expected a Datetime or integer epoch-ms column, got {dtype}")


def _as_string(name: str, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.String:
        return pl.col(name)
    if isinstance(dtype, pl.Categorical | pl.Enum) or dtype == pl.Null:
        return pl.col(name).cast(pl.String)
    raise FeatureInputError(f"events.{name}: expected a string or categorical column, got {dtype}")


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


def with_context_codes(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``ua_code``/``loc_code`` bit masks, computed once per distinct user agent / location string."""
    return frame.with_columns(
        _code_expr(frame.get_column("user_agent"), user_agent_code).alias("ua_code"),
        _code_expr(frame.get_column("location"), location_code).alias("loc_code"),
    )


def _code_expr(values: pl.Series, fn: Callable[[str], int]) -> pl.Expr:
    """``fn`` of each string of ``values`` as an int64 expression (nulls stay null)."""
    distinct, codes = _code_map(values.cast(pl.String).unique().sort(), fn)
    if values.null_count() == 0 and len(distinct) == 1:  # one user's request: a constant
        return pl.lit(codes[0], pl.Int64)
    return pl.col(values.name).replace_strict(distinct, codes, default=None, return_dtype=pl.Int64)


def _code_map(values: pl.Series, fn: Callable[[str], int]) -> tuple[list[str], list[int]]:
    """Distinct non-null strings of ``values`` and ``fn`` of each (evaluated once per distinct value)."""
    distinct = [v for v in values.to_list() if v is not None]
    return distinct, [fn(v) for v in distinct]


def _check_columns(schema: pl.Schema) -> None:
    missing = [c for c in REQUIRED_EVENT_COLUMNS if c not in schema]
    if missing:
        raise FeatureInputError(f"events: missing column(s) {missing}")


def _normalise_exprs(schema: pl.Schema, context: list[pl.Expr] | None = None) -> list[pl.Expr]:
    """The level-0 projection: typed columns the measures read.

    Context strings (gender, user agent, location) become categoricals, or the given ``context``
    expressions (the online path passes the codes directly); artist and (artist, song) become 64-bit
    hashes (``artist_h``, ``song_h``, null unless the event is a song with an artist), so the distinct
    counts group on integers.
    """
    page = schema["page"]
    artist = _as_string("artist", schema["artist"])
    song = _as_string("song", schema["song"])
    played = (pl.col("page") == "NextSong") & artist.is_not_null()
    return [
        _as_string("user_id", schema["user_id"]).alias("user_id"),
        _epoch_ms("ts", schema["ts"]).alias("ts_ms"),
        pl.col("session_id").cast(pl.Int64),
        pl.col("page")
        if isinstance(page, pl.Categorical | pl.Enum)
        else _as_string("page", page).alias("page"),
        pl.col("level"),
        pl.col("status").cast(pl.Int64),
        pl.col("length").cast(pl.Float64),
        pl.when(played).then(artist.hash(HASH_SEED)).otherwise(None).alias("artist_h"),
        pl.when(played & song.is_not_null())
        .then(artist.hash(HASH_SEED) ^ song.hash(HASH_SEED + 1))
        .otherwise(None)
        .alias("song_h"),
        *(
            context
            if context is not None
            else [
                _as_string(c, schema[c]).cast(pl.Categorical).alias(c)
                for c in ("gender", "user_agent", "location")
            ]
        ),
        _epoch_ms("registration", schema["registration"]).alias("registration_ms"),
    ]


def prepare_events(events: pl.LazyFrame, users: pl.DataFrame) -> pl.LazyFrame:
    """Select and normalise the columns the definitions need, keeping the users in ``users`` (user_id, uid).

    Output columns: uid, ts_ms, day, key (uid << 42 | ts), session_id, page, level, status, length,
    artist, song, gender, user_agent, location, registration_ms. Raises :class:`FeatureInputError`.
    """
    schema = events.collect_schema()
    _check_columns(schema)
    distinct = events.select(
        _epoch_ms("ts", schema["ts"]).min().alias("ts_min"),
        _epoch_ms("ts", schema["ts"]).max().alias("ts_max"),
        pl.col("ts").null_count().alias("ts_nulls"),
    ).collect()
    if distinct["ts_nulls"][0]:
        raise FeatureInputError(f"events.ts: {distinct['ts_nulls'][0]} null timestamp(s)")
    lo, hi = distinct["ts_min"][0], distinct["ts_max"][0]
    if lo is not None and (lo < 0 or hi >= _TS_LIMIT):
        raise FeatureInputError(f"events.ts: epoch ms outside [0, 2**{TS_BITS}) (min {lo}, max {hi})")
    return (
        events.select(_normalise_exprs(schema))
        .join(users.lazy(), on="user_id", how="inner")
        .drop("user_id")
        .with_columns(day=pl.col("ts_ms") // DAY_MS, key=pl.col("uid") * _TS_LIMIT + pl.col("ts_ms"))
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
    """Expression: segment index of each event key (first boundary > ts of the same user), else -1."""
    keys = (bnd["uid"] * _TS_LIMIT + bnd["b"]).to_numpy()
    if keys.size and not np.all(keys[1:] >= keys[:-1]):
        raise AssertionError("boundary keys must be sorted")

    def assign(s: pl.Series) -> pl.Series:
        k = s.to_numpy()
        if keys.size == 0:
            return pl.Series(np.full(k.shape, -1, dtype=np.int64))
        idx = np.searchsorted(keys, k, side="right")
        capped = np.minimum(idx, keys.size - 1)
        ok = (idx < keys.size) & ((keys[capped] >> TS_BITS) == (k >> TS_BITS))
        return pl.Series(np.where(ok, idx, -1).astype(np.int64))

    return pl.col("key").map_batches(assign, return_dtype=pl.Int64, is_elementwise=True)


def segment_partials(base: pl.DataFrame, bnd: pl.DataFrame) -> pl.DataFrame:
    """Every measure aggregated per segment (rows = all boundaries; sums 0, extrema null when empty).

    ``base``: prepared events with a valid ``seg`` column. Events are first rolled up per (segment,
    :func:`rollup_keys`), then measured; distinct counts come from "first occurrence" tables.
    """
    sums, maxima, minima = measure_aggs()
    lazy = base.lazy()
    plans: list[pl.LazyFrame] = [lazy.group_by("seg", **rollup_keys()).agg(**rollup_aggs())]
    for stream in PSEUDO_STREAMS:
        if stream.only_songs:
            continue
        plans.append(
            lazy.group_by("uid", *stream.keys)
            .agg(pl.col("seg").min())
            .group_by("seg")
            .agg(pl.len().cast(pl.Int64).alias(stream.measure))
        )
    # first plays: one 64-bit key per (user, artist) / (user, artist, song); only per-segment counts come back
    user_mix = pl.col("uid").cast(pl.UInt64) * _USER_MIX
    for measure, column in (("new_artists", "artist_h"), ("new_songs", "song_h")):
        plans.append(
            lazy.filter(pl.col(column).is_not_null())
            .group_by(key=pl.col(column) ^ user_mix)
            .agg(pl.col("seg").min())
            .group_by("seg")
            .agg(pl.len().cast(pl.Int64).alias(measure))
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
    same = (pl.col("uid") == pl.col("uid").shift(1)) & (pl.col("session_id") == pl.col("session_id").shift(1))
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
    measured = with_context_codes(rollup).lazy().with_columns(**measure_row_exprs())
    parts.insert(0, measured.group_by("seg").agg(**sums, **maxima, **minima).collect())
    out = bnd
    for part in parts:
        out = out.join(part, on="seg", how="left")
    return out.sort("seg").with_columns(pl.col(sum_measure_names()).fill_null(0))


def cumulative(partials: pl.DataFrame) -> pl.DataFrame:
    """Per-user running totals over segments: at boundary b, the value over all events with ts < b."""
    _, maxima, minima = measure_aggs()
    return partials.select(
        "uid",
        "b",
        *[pl.col(m).cum_sum().over("uid") for m in sum_measure_names()],
        *[
            pl.col(m).fill_null(_I64_MIN).cum_max().over("uid").replace(_I64_MIN, None).alias(m)
            for m in maxima
        ],
        *[
            pl.col(m).fill_null(_I64_MAX).cum_min().over("uid").replace(_I64_MAX, None).alias(m)
            for m in minima
        ],
    )


def window_frame(cum: pl.DataFrame, cut: pl.DataFrame, cfg: FeaturesConfig) -> pl.DataFrame:
    """(uid, T) rows with ``<m>__all``, ``<m>__<w>d``, ``<m>__p<w>d`` and the extrema at T."""
    sums = sum_measure_names()
    _, maxima, minima = measure_aggs()
    frame = cut.select("uid", "T").unique()
    for o in window_offsets(cfg):
        cols = sums if o else [*sums, *maxima, *minima]
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
    return frame.select("uid", "T", *exprs, *maxima, *minima)


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
    bad = cut.filter((pl.col("T") < 0) | (pl.col("T") >= _TS_LIMIT))
    if bad.height:
        raise FeatureInputError(f"cutoffs.cutoff: out of range for user {bad['user_id'][0]!r}")
    prepared = prepare_events(events.lazy(), users)
    bnd = boundaries(cut, cfg)
    base = prepared.with_columns(seg=_segment_assigner(bnd)).filter(pl.col("seg") >= 0).drop("key").collect()
    frame = window_frame(cumulative(segment_partials(base, bnd)), cut, cfg)
    return frame.join(users, on="uid").select("user_id", "T", *feature_exprs(cfg))


@lru_cache(maxsize=4)
def _fill_zero(names: tuple[str, ...]) -> list[pl.Expr]:
    """Sum measures with nulls as 0 (a sum ignores nulls)."""
    return [pl.col(n).fill_null(0) for n in names]


@lru_cache(maxsize=1)
def _online_stream_columns() -> dict[str, pl.Expr]:
    """Per-event distinct-count and session measures on one user's ts-sorted events.

    Same quantities as the streams of :func:`segment_partials`: on a ts-sorted frame "first occurrence"
    is ``is_first_distinct``; a session's time is the sum of the ts increments between its consecutive
    events; gaps are start-to-start and counted at the later start. Summed per segment afterwards.
    """
    ts = pl.col("ts_ms")
    artist_h, song_h = pl.col("artist_h"), pl.col("song_h")
    start = pl.col("session_id").is_first_distinct()
    prev_start = pl.when(start).then(ts).otherwise(None).forward_fill().shift(1)
    gap = pl.when(start).then(ts - prev_start).otherwise(None)
    return {
        "sessions": start.cast(pl.Int64),
        "active_days": (ts // DAY_MS).is_first_distinct().cast(pl.Int64),
        "new_artists": (artist_h.is_not_null() & artist_h.is_first_distinct()).cast(pl.Int64),
        "new_songs": (song_h.is_not_null() & song_h.is_first_distinct()).cast(pl.Int64),
        "session_ms": (ts - ts.shift(1).over("session_id")).fill_null(0).cast(pl.Int64),
        "session_gap_ms": gap.cast(pl.Int64),
        "session_gaps": gap.is_not_null().cast(pl.Int64),
    }


def compute_feature_row(
    events: pl.DataFrame, cutoff_ms: int, cfg: FeaturesConfig
) -> list[int | float | None]:
    """Features of one user's eager ``events`` at one cutoff (epoch ms), in registry order.

    Same measures (level 1) and feature formulas (level 3) as :func:`compute_feature_frame`; level 2
    runs on the single cutoff's segments without a query planner: one aggregation over the events, running
    totals in numpy, formulas evaluated on the row (the request path).
    """
    if not 0 <= cutoff_ms < _TS_LIMIT:
        raise FeatureInputError(f"cutoff: epoch ms {cutoff_ms} out of range")
    offsets = window_offsets(cfg)
    edges = [cutoff_ms - o * DAY_MS for o in reversed(offsets)]  # ascending, last = T
    _, maxima, minima = measure_aggs()
    schema = events.collect_schema()
    _check_columns(schema)
    nulls = events.get_column("ts").null_count()
    if nulls:
        raise FeatureInputError(f"events.ts: {nulls} null timestamp(s)")
    context = [
        pl.col("gender"),
        _code_expr(events.get_column("user_agent"), user_agent_code).alias("ua_code"),
        _code_expr(events.get_column("location"), location_code).alias("loc_code"),
    ]
    prepared = events.select(_normalise_exprs(schema, context)).filter(pl.col("ts_ms") < cutoff_ms)
    if not prepared.get_column("ts_ms").is_sorted():
        prepared = prepared.sort("ts_ms")
    rows = prepared.with_columns(
        seg=pl.lit(pl.Series(edges, dtype=pl.Int64)).search_sorted(pl.col("ts_ms"), side="right"),
        **_online_stream_columns(),
        **measure_row_exprs(per_event=True),
    )
    names = sum_measure_names()
    k = len(edges)
    # rows are ts-sorted, so seg is non-decreasing: running sums over rows, read at each segment's end
    mat = rows.select(_fill_zero(tuple(names))).to_numpy().astype(np.int64, copy=False)
    running = np.vstack([np.zeros((1, len(names)), dtype=np.int64), np.cumsum(mat, axis=0)])
    cum = running[np.searchsorted(rows.get_column("seg").to_numpy(), np.arange(k), side="right")]
    at = {o: k - 1 - i for i, o in enumerate(offsets)}  # offset → row of boundary T - o
    env: dict[str, int | float | None] = {"T": cutoff_ms}
    for j, m in enumerate(names):
        col = cum[:, j].tolist()
        env[f"{m}__all"] = col[at[0]]
        for w in cfg.windows_days:
            env[f"{m}__{w}d"] = col[at[0]] - col[at[w]]
            env[f"{m}__p{w}d"] = col[at[w]] - col[at[2 * w]]
    extrema = rows.select(*maxima.values(), *minima.values()).row(0)
    env.update(zip([*maxima, *minima], extrema, strict=True))
    return evaluate_features(cfg, env)
