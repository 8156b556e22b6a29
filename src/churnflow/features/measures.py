"""Levels 1 and 2 of the feature definition: the measures, each declared once, and their windows.

A :class:`Measure` is ``agg(value) over the events where `where` holds``: ``agg`` is ``sum`` (additive:
counts, microseconds, minute sums), ``max`` or ``min`` (timestamps, last-value keys). ``value`` and
``where`` are expressions of :mod:`churnflow.features.expr` over the event columns of
:mod:`churnflow.features.columns`, compiled to Polars (the offline and Spark executions) and to numpy
(the single-request online execution). A null value, or a null ``where``, means the event does not
count.

Distinct counts are "first occurrence" streams (:data:`PSEUDO_STREAMS`); session time and gaps
(:data:`SESSION_MEASURES`) are sums over session pieces. Level 2 reads every additive measure over the
whole history before the cutoff T (``<m>__all``), over ``[T - w, T)`` (``<m>__<w>d``) and over the window
before that (``<m>__p<w>d``); maxima/minima are read over the whole history, by name.

Invariant: measures are int64 and every aggregation is a sum, max or min, so values over "events with
ts < b" accumulate over time segments, events can be pre-aggregated into roll-up rows, and the three
executions agree bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Final, Literal

import numpy as np
import polars as pl

from churnflow.config.features import FeaturesConfig
from churnflow.data.schema import PAGES
from churnflow.features.columns import CODE_BITS, PAGE_CODE, SONG_PAGE, TS, slug
from churnflow.features.expr import Col, Cond, IntExpr, NumpyCols, PolarsCols, both

Agg = Literal["sum", "max", "min"]


@dataclass(frozen=True)
class Measure:
    """``agg`` of ``value`` over the events where ``where`` holds (int64; see the module docstring)."""

    name: str
    agg: Agg
    value: IntExpr
    where: Cond | None = None

    @cached_property
    def columns(self) -> frozenset[str]:
        """Event columns the measure reads."""
        return self.value.columns() | (self.where.columns() if self.where else frozenset())

    def polars(self, col: PolarsCols) -> pl.Expr:
        """Per-row value to aggregate with ``agg``: null (a sum: 0 or null) where the row does not count."""
        value = self.value.polars(col)
        if self.where is None:
            return value.cast(pl.Int64)
        where = self.where.polars(col)
        return (value * where.cast(pl.Int64) if self.agg == "sum" else pl.when(where).then(value)).cast(
            pl.Int64
        )

    def numpy(self, col: NumpyCols) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-event values and the mask of events that count (None: every event counts)."""
        value, ok = self.value.numpy(col)
        return value, both(self.where.numpy(col) if self.where is not None else None, ok)


# ---------------------------------------------------------------------------------------------------
# The measures
# ---------------------------------------------------------------------------------------------------

#: Pages counted as their own measure ``page_<slug>`` (every Sparkify page except NextSong).
COUNTED_PAGES: Final[tuple[str, ...]] = tuple(p for p in PAGES if p != SONG_PAGE)

#: Pages whose latest visit is kept (``last_<slug>_ts``), with the family of its "days since" feature.
RECENCY_PAGES: Final[dict[str, str]] = {
    "Thumbs Up": "recency",
    "Thumbs Down": "recency",
    "Add Friend": "recency",
    "Add to Playlist": "recency",
    "Error": "recency",
    "Help": "recency",
    "Roll Advert": "recency",
    "Settings": "recency",
    "Upgrade": "subscription",
    "Downgrade": "subscription",
    "Submit Upgrade": "subscription",
    "Submit Downgrade": "subscription",
}

N = Col("n")  # events (1 per event; a roll-up row's event count)
_song = Col("page_code").equals(PAGE_CODE[SONG_PAGE])
_paid = Col("paid").equals(1)


def _page(page: str) -> Cond:
    return Col("page_code").equals(PAGE_CODE[page])


#: Every measure aggregated from events, in a fixed order (sums, then maxima, then minima).
MEASURES: Final[tuple[Measure, ...]] = (
    Measure("events", "sum", N),
    Measure("songs", "sum", N, _song),
    Measure("listen_us", "sum", Col("length_us")),
    Measure("paid_events", "sum", N, _paid),
    Measure("paid_songs", "sum", N, _song & _paid),
    Measure("redirects", "sum", N, Col("status").equals(307)),
    Measure("night_songs", "sum", N, _song & Col("night").equals(1)),
    Measure("weekend_songs", "sum", N, _song & Col("weekend").equals(1)),
    Measure("event_minutes", "sum", Col("minutes")),
    Measure("song_minutes", "sum", Col("minutes"), _song),
    *(Measure(f"page_{slug(p)}", "sum", N, _page(p)) for p in COUNTED_PAGES),
    Measure("last_ts", "max", TS),
    Measure("last_song_ts", "max", TS, _song),
    Measure("last_paid_key", "max", TS * 2 + Col("paid")),
    Measure("last_female_key", "max", TS * 2 + Col("female")),
    Measure("last_ua_key", "max", TS * (1 << CODE_BITS) + Col("ua_code")),
    Measure("last_loc_key", "max", TS * (1 << CODE_BITS) + Col("loc_code")),
    Measure("registration", "max", Col("registration_ms")),
    *(Measure(f"last_{slug(p)}_ts", "max", TS, _page(p)) for p in RECENCY_PAGES),
    Measure("first_ts", "min", TS),
    Measure("first_paid_ts", "min", TS, _paid),
)


@dataclass(frozen=True)
class PseudoStream:
    """A distinct-count measure: one "event" per distinct value of column ``key``, at its first ts.

    Counting these in a window counts the distinct values first seen there; over the whole history
    before T it is the number of distinct values seen before T. ``hashed``: the key is a 64-bit hash,
    null where there is nothing to count (nulls skipped); otherwise a null key is one value.
    """

    measure: str
    key: str
    hashed: bool


#: Distinct-count measures ("first occurrence" streams).
PSEUDO_STREAMS: Final[tuple[PseudoStream, ...]] = (
    PseudoStream("sessions", "session_id", hashed=False),
    PseudoStream("active_days", "day", hashed=False),
    PseudoStream("new_artists", "artist_h", hashed=True),
    PseudoStream("new_songs", "song_h", hashed=True),
)

#: Measures computed from sessions: ``session_ms`` (time inside sessions: the sum of ts increments
#: within a session, so a session running across T is truncated at T), ``session_gap_ms`` /
#: ``session_gaps`` (start-to-start gaps between consecutive sessions, counted when the later starts).
SESSION_MEASURES: Final[tuple[str, ...]] = ("session_ms", "session_gap_ms", "session_gaps")


def measures(agg: Agg) -> tuple[Measure, ...]:
    """The measures of :data:`MEASURES` aggregated with ``agg``, in order."""
    return tuple(m for m in MEASURES if m.agg == agg)


def sum_measure_names() -> list[str]:
    """Names of all additive measures, in a fixed order: sums, distinct counts, session measures."""
    return [*(m.name for m in measures("sum")), *(s.measure for s in PSEUDO_STREAMS), *SESSION_MEASURES]


def window_offsets(cfg: FeaturesConfig) -> list[int]:
    """Day offsets whose boundaries ``T - offset`` are needed: every window w and the window before it."""
    return sorted({0} | {w for w in cfg.windows_days} | {2 * w for w in cfg.windows_days})
