"""Online execution: one user's events (e.g. from an API request) and one cutoff → a feature dict.

The request path runs no query planner: the level-0 columns of :mod:`churnflow.features.columns`
(the same declarations the offline path compiles to Polars) are compiled to numpy, then every measure of
:mod:`churnflow.features.measures` is compiled to numpy over the ts-sorted events with ts < T, running
sums read at the window boundaries give the windows, and the formulas of
:mod:`churnflow.features.formulas` are evaluated on that one row.

Invariant: same int64 measures and float64 formulas as :func:`churnflow.features.compute_features`,
so both give the same bits.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Final

import numpy as np
import polars as pl

from churnflow.config.features import FeaturesConfig
from churnflow.features.columns import (
    DAY_MS,
    EVENT_COLUMNS,
    KEY_COLUMNS,
    REAL_INPUTS,
    TEXT_INPUTS,
    TS_COLUMNS,
    TS_LIMIT,
    FeatureInputError,
    check_event_columns,
    check_ts,
    input_column,
)
from churnflow.features.expr import Array, IntExpr, Strings
from churnflow.features.formulas import Value, evaluate_features
from churnflow.features.measures import (
    MEASURES,
    PSEUDO_STREAMS,
    measures,
    sum_measure_names,
    window_offsets,
)
from churnflow.features.registry import feature_names

#: Level-0 columns the measures, the distinct-count streams and the session measures read, but ``n``
#: (1 per event) and the ts-derived columns, which are computed after the cutoff filter.
_SELECTED: Final[tuple[str, ...]] = tuple(
    sorted(
        set().union(*(m.columns for m in MEASURES), (s.key for s in PSEUDO_STREAMS), ("ts_ms", "session_id"))
        - {"n", *TS_COLUMNS}
    )
)
_LEVEL0: Final[dict[str, IntExpr]] = {c: (EVENT_COLUMNS | KEY_COLUMNS)[c] for c in _SELECTED}
#: Integer dtypes numpy widens to int64 exactly (as the Polars cast does).
_EXACT_INTS: Final[tuple[type[pl.DataType], ...]] = (
    pl.Int8,
    pl.Int16,
    pl.Int32,
    pl.Int64,
    pl.UInt8,
    pl.UInt16,
    pl.UInt32,
)


def _typed(raw: pl.Series) -> Array | Strings:
    """One raw column as the typed input the level-0 expressions read (see :func:`input_column`).

    The column's typing expression runs (on this one column) unless its dtype is already one numpy reads
    exactly as typed: strings (String, Categorical, Enum), integers, floats, millisecond datetimes.
    """
    name, dtype = raw.name, raw.dtype
    if name in TEXT_INPUTS:
        if not isinstance(dtype, pl.String | pl.Categorical | pl.Enum):
            raw = raw.to_frame().select(input_column(name, dtype).cast(pl.String)).to_series()
        return Strings(raw)
    real = name in REAL_INPUTS
    if real:
        exact = isinstance(dtype, pl.Float32 | pl.Float64)
    else:
        exact = dtype.time_unit == "ms" if isinstance(dtype, pl.Datetime) else isinstance(dtype, _EXACT_INTS)
    if not exact:
        raw = raw.to_frame().select(input_column(name, dtype)).to_series()
    if raw.null_count() == 0:
        values, ok = raw.to_numpy(), None
    else:
        arrow = raw.to_arrow()
        ok = arrow.is_valid().to_numpy(False)
        values = arrow.fill_null(0).to_numpy() if raw.dtype.is_integer() else raw.to_numpy()
    if values.dtype.kind == "M":
        values = values.view(np.int64)
    values = values.astype(np.float64 if real else np.int64, copy=False)
    return (values, ok) if ok is None else (np.where(ok, values, 0).astype(values.dtype), ok)


def _event_arrays(events: pl.DataFrame) -> dict[str, Array]:
    """Every level-0 column the measures read, as int64 numpy arrays with their "not null" masks.

    The :data:`EVENT_COLUMNS` and :data:`KEY_COLUMNS` expressions compiled to numpy over the typed
    input columns (no query engine; a string column is dictionary-encoded once, when first read).
    """
    inputs: dict[str, Array | Strings] = {}

    def col(name: str) -> Array | Strings:
        if name not in inputs:
            inputs[name] = _typed(events.get_column(name))
        return inputs[name]

    arrays = {c: e.numpy(col) for c, e in _LEVEL0.items()}
    ts = arrays["ts_ms"][0]
    check_ts(0, int(ts.min()) if ts.size else None, int(ts.max()) if ts.size else None)
    return arrays


def _ts_columns(arrays: dict[str, Array]) -> dict[str, Array]:
    """:data:`TS_COLUMNS` of the events in ``arrays`` (conditions as 0/1)."""
    col = arrays.__getitem__
    out: dict[str, Array] = {}
    for name, expr in TS_COLUMNS.items():
        out[name] = expr.numpy(col) if isinstance(expr, IntExpr) else (expr.numpy(col).astype(np.int64), None)
    return out


def _first_occurrence(values: np.ndarray, ok: np.ndarray | None, null_is_value: bool) -> np.ndarray:
    """int64 0/1: 1 at the first row of each distinct value (and at the first null if ``null_is_value``)."""
    out = np.zeros(values.size, dtype=np.int64)
    if ok is None and values.size and (values[1:] >= values[:-1]).all():  # sorted: where the value changes
        out[0] = 1
        out[1:] = values[1:] != values[:-1]
        return out
    rows = np.arange(values.size) if ok is None else np.flatnonzero(ok)
    by_value = rows[np.argsort(values[rows], kind="stable")]  # equal values in row order
    ordered = values[by_value]
    first = np.ones(by_value.size, dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    out[by_value[first]] = 1
    if null_is_value and rows.size < values.size:
        out[np.argmin(ok)] = 1
    return out


def _session_pieces(ts: np.ndarray, session: Array) -> dict[str, np.ndarray]:
    """Per-event session measures of ts-sorted events: ts increments within a session and start gaps."""
    values, ok = session
    n = ts.size
    by_session: np.ndarray | None = None  # rows by session, ts order kept within one (None: as they are)
    if ok is None and (values[1:] >= values[:-1]).all():
        codes = values
    else:
        codes = np.zeros(n, dtype=np.int64)  # dense session codes, 0: null session
        valid = np.ones(n, dtype=bool) if ok is None else ok
        codes[valid] = np.unique(values[valid], return_inverse=True)[1] + 1
        by_session = np.argsort(codes, kind="stable")
    start_rows = np.flatnonzero(_first_occurrence(codes, None, False))
    gap_ms = np.zeros(n, dtype=np.int64)
    gaps = np.zeros(n, dtype=np.int64)
    gap_ms[start_rows[1:]] = np.diff(ts[start_rows])
    gaps[start_rows[1:]] = 1
    ts_s, ses_s = (ts, codes) if by_session is None else (ts[by_session], codes[by_session])
    step = np.zeros(n, dtype=np.int64)
    step[1:] = np.where(ses_s[1:] == ses_s[:-1], ts_s[1:] - ts_s[:-1], 0)
    if by_session is None:
        session_ms = step
    else:
        session_ms = np.empty(n, dtype=np.int64)
        session_ms[by_session] = step
    return {"session_ms": session_ms, "session_gap_ms": gap_ms, "session_gaps": gaps}


@lru_cache(maxsize=1)
def _sum_names() -> tuple[str, ...]:
    """:func:`sum_measure_names`, computed once."""
    return tuple(sum_measure_names())


@lru_cache(maxsize=8)
def _window_keys(
    windows_days: tuple[int, ...], offsets: tuple[int, ...]
) -> tuple[tuple[str, ...], np.ndarray]:
    """Env names of the window values and, per name block, the boundary columns it subtracts.

    Returns (names, pairs): names are ``<m>__all`` for every sum measure, then per window ``<m>__<w>d``
    and ``<m>__p<w>d``; ``pairs[i] = (a, b)`` means block i is ``cum[:, a] - cum[:, b]`` (b = -1: cum[:, a]).
    """
    sums = sum_measure_names()
    at = {o: len(offsets) - 1 - i for i, o in enumerate(offsets)}  # offset → column of boundary T - o
    names = [f"{m}__all" for m in sums]
    pairs = [(at[0], -1)]
    for w in windows_days:
        names += [f"{m}__{w}d" for m in sums] + [f"{m}__p{w}d" for m in sums]
        pairs += [(at[0], at[w]), (at[w], at[2 * w])]
    return tuple(names), np.array(pairs, dtype=np.int64)


def compute_feature_row(events: pl.DataFrame, cutoff_ms: int, cfg: FeaturesConfig) -> list[Value]:
    """Features of one user's eager ``events`` at one cutoff (epoch ms), in registry order."""
    if not 0 <= cutoff_ms < TS_LIMIT:
        raise FeatureInputError(f"cutoff: epoch ms {cutoff_ms} out of range")
    offsets = tuple(window_offsets(cfg))
    names, pairs = _window_keys(tuple(cfg.windows_days), offsets)
    check_event_columns(events.columns)
    check_ts(events.get_column("ts").null_count(), None, None)
    arrays = _event_arrays(events)
    ts = arrays["ts_ms"][0]
    keep = ts < cutoff_ms
    order = None if keep.all() else np.flatnonzero(keep)
    if ts.size > 1 and not (ts[1:] >= ts[:-1]).all():  # ts order, ties in input order
        order = (
            np.argsort(ts, kind="stable") if order is None else order[np.argsort(ts[order], kind="stable")]
        )
    if order is not None:
        arrays = {c: (v[order], None if ok is None else ok[order]) for c, (v, ok) in arrays.items()}
        ts = arrays["ts_ms"][0]
    n = ts.size
    arrays |= _ts_columns(arrays)
    arrays["n"] = (np.ones(n, dtype=np.int64), None)
    col = arrays.__getitem__

    sums = _sum_names()
    per_event = np.zeros((len(sums), n), dtype=np.int64)  # row: one additive measure per event
    row = dict(zip(sums, per_event, strict=True))
    for m in measures("sum"):
        v, counts = m.numpy(col)
        np.copyto(row[m.name], v, where=True if counts is None else counts)
    for s in PSEUDO_STREAMS:
        row[s.measure][:] = _first_occurrence(*arrays[s.key], null_is_value=not s.hashed)
    for name, v in _session_pieces(ts, arrays["session_id"]).items():
        row[name][:] = v
    edges = np.array([cutoff_ms - o * DAY_MS for o in reversed(offsets)], dtype=np.int64)
    at = np.searchsorted(ts, edges, side="left")  # ascending: events with ts < edges[i] are rows < at[i]
    segments = [per_event[:, a:b].sum(axis=1) for a, b in zip((0, *at[:-1]), at, strict=True)]
    cum = np.cumsum(np.stack(segments, axis=1), axis=1)  # column i: sums over events with ts < edges[i]
    blocks = cum[:, pairs[:, 0]] - np.where(pairs[:, 1] >= 0, cum[:, pairs[:, 1]], 0)
    env: dict[str, Value] = dict(zip(names, blocks.T.ravel().tolist(), strict=True))
    env["T"] = cutoff_ms
    for m in MEASURES:
        if m.agg != "sum":
            v, counts = m.numpy(col)
            picked = v if counts is None else v[counts]
            env[m.name] = int(getattr(picked, m.agg)()) if picked.size else None
    return evaluate_features(cfg, env)


def _epoch_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime, exactly (sub-millisecond parts round up: ts < T is kept)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return -(-micros // 1000)


def compute_features_online(events: pl.DataFrame, cutoff: datetime, cfg: FeaturesConfig) -> dict[str, float]:
    """Features of one user at ``cutoff`` from that user's events (only events with ts < cutoff count).

    Same definitions and arithmetic as :func:`churnflow.features.compute_features`; undefined features
    (e.g. a ratio over zero songs) are NaN. A naive ``cutoff`` is read as UTC. Raises
    :class:`FeatureInputError` when the events hold more than one user.
    """
    if "user_id" not in events.columns:
        raise FeatureInputError("events: missing column 'user_id'")
    users = events.get_column("user_id").cast(pl.String).n_unique()
    if users > 1:
        raise FeatureInputError(f"events.user_id: one user expected, got {users}")
    if cutoff.tzinfo is None:
        cutoff = cutoff.replace(tzinfo=UTC)
    row = compute_feature_row(events, _epoch_ms(cutoff), cfg)
    return {
        name: float("nan") if v is None else float(v) for name, v in zip(feature_names(cfg), row, strict=True)
    }
