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
from churnflow.data.schema import PAGES
from churnflow.features.definitions import (
    CODE_BITS,
    COUNTED_PAGES,
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    PSEUDO_STREAMS,
    RECENCY_PAGES,
    SESSION_MEASURES,
    SONG_PAGE,
    TS_BITS,
    evaluate_features,
    feature_exprs,
    location_code,
    measure_aggs,
    measure_row_exprs,
    rollup_aggs,
    rollup_keys,
    slug,
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


#: Page → small integer code for the online path (-1: null or a page outside the schema).
_PAGE_CODE: Final[dict[str, int]] = {p: i for i, p in enumerate(PAGES)}
_SONG_CODE: Final[int] = _PAGE_CODE[SONG_PAGE]
#: Columns of the online per-event matrix (all int64, nulls replaced; ``*_ok`` flags say "not null").
_ONLINE_COLUMNS: Final[tuple[str, ...]] = (
    "ts_ms",
    "session",
    "page",
    "paid",
    "paid_ok",
    "female",
    "female_ok",
    "redirect",
    "length_us",
    "artist",
    "song",
    "registration_ms",
    "registration_ok",
)
_ONLINE_SUMS: Final[tuple[str, ...]] = (
    "events",
    "songs",
    "listen_us",
    "paid_events",
    "paid_songs",
    "redirects",
    "night_songs",
    "weekend_songs",
    "event_minutes",
    "song_minutes",
    *(f"page_{slug(p)}" for p in COUNTED_PAGES),
    *(s.measure for s in PSEUDO_STREAMS),
    *SESSION_MEASURES,
)
_ONLINE_MAXIMA: Final[tuple[str, ...]] = (
    "last_ts",
    "last_song_ts",
    "last_paid_key",
    "last_female_key",
    "last_ua_key",
    "last_loc_key",
    "registration",
    *(f"last_{slug(p)}_ts" for p in RECENCY_PAGES),
)
_ONLINE_MINIMA: Final[tuple[str, ...]] = ("first_ts", "first_paid_ts")
_COUNTED_CODES: Final[np.ndarray] = np.array([_PAGE_CODE[p] for p in COUNTED_PAGES], dtype=np.int64)
_RECENCY_CODES: Final[tuple[int, ...]] = tuple(_PAGE_CODE[p] for p in RECENCY_PAGES)


@lru_cache(maxsize=16)
def _online_event_exprs(dtypes: tuple[pl.DataType, ...]) -> tuple[pl.Expr, ...]:
    """The per-event integer columns :data:`_ONLINE_COLUMNS` of one user's raw events (one select).

    ``dtypes``: the raw dtypes of :data:`REQUIRED_EVENT_COLUMNS`. The conversions are those of
    :func:`_normalise_exprs` and the per-event values of :func:`measure_columns` (``length_us``, the
    level / gender / status tests, the artist and (artist, song) hashes); distinct values of session
    and hashes become dense codes (0: null), which is all the "first occurrence" streams need.
    """
    schema = dict(zip(REQUIRED_EVENT_COLUMNS, dtypes, strict=True))
    page = _as_string("page", schema["page"])
    is_song = page == SONG_PAGE
    artist = _as_string("artist", schema["artist"])
    song = _as_string("song", schema["song"])
    played = is_song & artist.is_not_null()
    artist_h = pl.when(played).then(artist.hash(HASH_SEED)).otherwise(None)
    song_h = (
        pl.when(played & song.is_not_null())
        .then(artist.hash(HASH_SEED) ^ song.hash(HASH_SEED + 1))
        .otherwise(None)
    )
    paid = pl.col("level") == "paid"
    female = pl.col("gender") == "F"
    registration = _epoch_ms("registration", schema["registration"])
    i64 = pl.Int64
    return (
        _epoch_ms("ts", schema["ts"]).alias("ts_ms"),
        pl.col("session_id").cast(i64).rank("dense").fill_null(0).cast(i64).alias("session"),
        page.replace_strict(list(_PAGE_CODE), list(_PAGE_CODE.values()), default=-1, return_dtype=i64)
        .fill_null(-1)
        .alias("page"),
        paid.fill_null(False).cast(i64).alias("paid"),
        paid.is_not_null().cast(i64).alias("paid_ok"),
        female.fill_null(False).cast(i64).alias("female"),
        female.is_not_null().cast(i64).alias("female_ok"),
        (pl.col("status").cast(i64) == 307).fill_null(False).cast(i64).alias("redirect"),
        pl.when(is_song)
        .then((pl.col("length").cast(pl.Float64) * 1e6).round(0))
        .otherwise(0.0)
        .cast(i64)
        .fill_null(0)
        .alias("length_us"),
        artist_h.rank("dense").fill_null(0).cast(i64).alias("artist"),
        song_h.rank("dense").fill_null(0).cast(i64).alias("song"),
        registration.fill_null(0).alias("registration_ms"),
        registration.is_not_null().cast(i64).alias("registration_ok"),
    )


def _context_codes(
    events: pl.DataFrame, name: str, fn: Callable[[str], int]
) -> tuple[np.ndarray, np.ndarray]:
    """``fn`` of each event's ``name`` string, and a "not null" flag (both int64 arrays)."""
    values = events.get_column(name)
    if values.null_count() == 0 and values.n_unique() == 1:  # one user's request: usually one value
        code = fn(str(values[0]))
        return np.full(values.len(), code, dtype=np.int64), np.ones(values.len(), dtype=np.int64)
    distinct, codes = _code_map(values.cast(pl.String).unique().sort(), fn)
    mapped = values.cast(pl.String).replace_strict(distinct, codes, default=None, return_dtype=pl.Int64)
    return mapped.fill_null(0).to_numpy(), mapped.is_not_null().cast(pl.Int64).to_numpy()


def _first_occurrence(codes: np.ndarray) -> np.ndarray:
    """int64 0/1: 1 at the first row of each distinct value of ``codes`` (``is_first_distinct``)."""
    out = np.zeros(codes.size, dtype=np.int64)
    out[np.unique(codes, return_index=True)[1]] = 1
    return out


@lru_cache(maxsize=8)
def _window_keys(
    windows_days: tuple[int, ...], offsets: tuple[int, ...]
) -> tuple[tuple[str, ...], np.ndarray]:
    """Env names of the window values and, per name block, the boundary columns it subtracts.

    Returns (names, pairs): names are ``<m>__all`` for every sum measure, then per window ``<m>__<w>d``
    and ``<m>__p<w>d``; ``pairs[i] = (a, b)`` means block i is ``cum[:, a] - cum[:, b]`` (b = -1: cum[:, a]).
    """
    if list(_ONLINE_SUMS) != sum_measure_names():
        raise AssertionError("online sum measures out of sync with definitions.measure_columns")
    _, maxima, minima = measure_aggs()
    if (tuple(maxima), tuple(minima)) != (_ONLINE_MAXIMA, _ONLINE_MINIMA):
        raise AssertionError("online extrema out of sync with definitions.measure_columns")
    k = len(offsets)
    at = {o: k - 1 - i for i, o in enumerate(offsets)}  # offset → column of boundary T - o
    names = [f"{m}__all" for m in _ONLINE_SUMS]
    pairs = [(at[0], -1)]
    for w in windows_days:
        names += [f"{m}__{w}d" for m in _ONLINE_SUMS]
        names += [f"{m}__p{w}d" for m in _ONLINE_SUMS]
        pairs += [(at[0], at[w]), (at[w], at[2 * w])]
    return tuple(names), np.array(pairs, dtype=np.int64)


def _masked_max(values: np.ndarray, mask: np.ndarray) -> int | None:
    """Max of ``values`` where ``mask`` (None when nothing qualifies, like a Polars max)."""
    picked = values[mask]
    return int(picked.max()) if picked.size else None


def _masked_min(values: np.ndarray, mask: np.ndarray) -> int | None:
    """Min of ``values`` where ``mask`` (None when nothing qualifies, like a Polars min)."""
    picked = values[mask]
    return int(picked.min()) if picked.size else None


def compute_feature_row(
    events: pl.DataFrame, cutoff_ms: int, cfg: FeaturesConfig
) -> list[int | float | None]:
    """Features of one user's eager ``events`` at one cutoff (epoch ms), in registry order.

    Same measures (level 1) and feature formulas (level 3) as :func:`compute_feature_frame`, with the
    same int64 arithmetic: one Polars select turns the events into integer columns, the measures are
    numpy masks over the ts-sorted events with ts < cutoff, running sums read at the window boundaries
    give the windows, and the formulas are evaluated on the row (the request path, no query planner).
    """
    if not 0 <= cutoff_ms < _TS_LIMIT:
        raise FeatureInputError(f"cutoff: epoch ms {cutoff_ms} out of range")
    offsets = tuple(window_offsets(cfg))
    names, pairs = _window_keys(tuple(cfg.windows_days), offsets)
    schema = events.collect_schema()
    _check_columns(schema)
    nulls = events.get_column("ts").null_count()
    if nulls:
        raise FeatureInputError(f"events.ts: {nulls} null timestamp(s)")
    exprs = _online_event_exprs(tuple(schema[c] for c in REQUIRED_EVENT_COLUMNS))
    cols = events.select(exprs).to_numpy(order="c").astype(np.int64, copy=False).T
    ua, ua_ok = _context_codes(events, "user_agent", user_agent_code)
    loc, loc_ok = _context_codes(events, "location", location_code)
    ctx = np.vstack([ua, ua_ok, loc, loc_ok])
    keep = cols[0] < cutoff_ms
    if not keep.all():
        cols, ctx = cols[:, keep], ctx[:, keep]
    ts = cols[0]
    if ts.size > 1 and not (ts[1:] >= ts[:-1]).all():
        order = np.argsort(ts, kind="stable")
        cols, ctx = cols[:, order], ctx[:, order]
        ts = cols[0]
    session, page, paid, paid_ok, female, female_ok, redirect, length_us = cols[1:9]
    artist, song, registration, registration_ok = cols[9:13]
    n = ts.size
    is_song = (page == _SONG_CODE).astype(np.int64)
    minutes = ts // MINUTE_MS
    day = ts // DAY_MS
    starts = _first_occurrence(session)
    start_rows = np.flatnonzero(starts)
    gap_ms = np.zeros(n, dtype=np.int64)
    gaps = np.zeros(n, dtype=np.int64)
    gap_ms[start_rows[1:]] = np.diff(ts[start_rows])
    gaps[start_rows[1:]] = 1
    by_session = np.argsort(session, kind="stable")  # ts order kept within a session
    ts_s, ses_s = ts[by_session], session[by_session]
    step = np.zeros(n, dtype=np.int64)
    if n > 1:
        step[1:] = np.where(ses_s[1:] == ses_s[:-1], ts_s[1:] - ts_s[:-1], 0)
    session_ms = np.empty(n, dtype=np.int64)
    session_ms[by_session] = step
    new_day = np.ones(n, dtype=np.int64)
    new_day[1:] = day[1:] != day[:-1]
    per_event = np.empty((len(_ONLINE_SUMS), n), dtype=np.int64)
    per_event[:10] = (
        np.ones(n, dtype=np.int64),
        is_song,
        length_us,
        paid,
        is_song & paid,
        redirect,
        is_song & ((ts // HOUR_MS) % 24 < 6),
        is_song & ((day + 3) % 7 >= 5),
        minutes,
        is_song * minutes,
    )
    n_pages = _COUNTED_CODES.size
    per_event[10 : 10 + n_pages] = page[None, :] == _COUNTED_CODES[:, None]
    per_event[10 + n_pages :] = (
        starts,
        new_day,
        _first_occurrence(artist) * (artist != 0),
        _first_occurrence(song) * (song != 0),
        session_ms,
        gap_ms,
        gaps,
    )
    running = np.zeros((per_event.shape[0], n + 1), dtype=np.int64)
    np.cumsum(per_event, axis=1, out=running[:, 1:])
    edges = np.array([cutoff_ms - o * DAY_MS for o in reversed(offsets)], dtype=np.int64)
    cum = running[:, np.searchsorted(ts, edges, side="left")]  # column i: events with ts < edges[i]
    blocks = cum[:, pairs[:, 0]] - np.where(pairs[:, 1] >= 0, cum[:, pairs[:, 1]], 0)
    env: dict[str, int | float | None] = dict(zip(names, blocks.T.ravel().tolist(), strict=True))
    env["T"] = cutoff_ms
    song_rows = is_song.astype(bool)
    last_page = dict.fromkeys(_RECENCY_CODES)
    if n:
        codes, first_rev = np.unique(page[::-1], return_index=True)
        last_at = dict(zip(codes.tolist(), ts[n - 1 - first_rev].tolist(), strict=True))
        last_page = {c: last_at.get(c) for c in _RECENCY_CODES}
    env.update(
        last_ts=int(ts[-1]) if n else None,
        last_song_ts=_masked_max(ts, song_rows),
        last_paid_key=_masked_max(ts * 2 + paid, paid_ok.astype(bool)),
        last_female_key=_masked_max(ts * 2 + female, female_ok.astype(bool)),
        last_ua_key=_masked_max(ts * (1 << CODE_BITS) + ctx[0], ctx[1].astype(bool)),
        last_loc_key=_masked_max(ts * (1 << CODE_BITS) + ctx[2], ctx[3].astype(bool)),
        registration=_masked_max(registration, registration_ok.astype(bool)),
        first_ts=int(ts[0]) if n else None,
        first_paid_ts=_masked_min(ts, paid.astype(bool)),
    )
    for p, code in zip(RECENCY_PAGES, _RECENCY_CODES, strict=True):
        env[f"last_{slug(p)}_ts"] = last_page[code]
    return evaluate_features(cfg, env)
