"""The single feature definition: Polars expressions at three levels, shared by every execution.

1. **Measures** (:func:`rollup_values`, :func:`measure_aggs`, :data:`PSEUDO_STREAMS`): integer
   aggregates over raw events (counts, listening microseconds, minute sums, last-value keys). Every
   measure is additive (sum) or monotone (max/min), so its value over "events with ts < b" can be
   accumulated over time segments (and events can be pre-aggregated into roll-up rows).
2. **Windows**: each additive measure is read over the whole history before the cutoff T (``__all``), over
   ``[T - w, T)`` (``__7d`` ...) and over the window before that, ``[T - 2w, T - w)`` (``__p7d`` ...).
   Monotone measures are read over the whole history (``__last`` / ``__first``).
3. **Features** (:func:`feature_definitions`): float64 formulas (:class:`Term`) over the window
   columns, compiled to Polars expressions or evaluated on one row; each comes with its
   :class:`FeatureSpec` (name ``family__name``, family, description, dtype).

Invariant: every quantity at cutoff T depends only on events with ``ts < T`` (strictly); measures are
integers, so the window arithmetic is exact and the offline, online and Spark executions agree bit for bit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import polars as pl

from churnflow.config.features import FeaturesConfig
from churnflow.data.schema import PAGES

DAY_MS: Final[int] = 86_400_000
HOUR_MS: Final[int] = 3_600_000
MINUTE_MS: Final[int] = 60_000
#: Last-value keys pack ``ts_ms * 2**CODE_BITS + code``: the max picks the code of the latest event
#: (ties at the same millisecond resolve to the larger code, whatever the input order).
CODE_BITS: Final[int] = 20
#: Timestamps must fit 42 bits of milliseconds (before 2109) so (user, ts) packs into one int64 key.
TS_BITS: Final[int] = 42

SONG_PAGE: Final[str] = "NextSong"


def slug(text: str) -> str:
    """``"Thumbs Up"`` → ``"thumbs_up"``: a page name as a column-name fragment."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


#: Pages counted as their own measure ``page_<slug>`` (every Sparkify page except NextSong).
COUNTED_PAGES: Final[tuple[str, ...]] = tuple(p for p in PAGES if p != SONG_PAGE)

#: Pages whose latest visit is kept (``last_<slug>_ts``) for recency features.
RECENCY_PAGES: Final[tuple[str, ...]] = (
    "Thumbs Up",
    "Thumbs Down",
    "Add Friend",
    "Add to Playlist",
    "Error",
    "Help",
    "Roll Advert",
    "Settings",
    "Upgrade",
    "Downgrade",
    "Submit Upgrade",
    "Submit Downgrade",
)

# ---------------------------------------------------------------------------------------------------
# Context attributes: user agent and location strings → bit masks (computed once per distinct string)
# ---------------------------------------------------------------------------------------------------

#: user-agent bits: operating system (one of), browser (one of), mobile flag.
UA_BITS: Final[dict[str, int]] = {
    "os_windows": 0,
    "os_mac": 1,
    "os_ios": 2,
    "os_linux": 3,
    "os_android": 4,
    "browser_chrome": 5,
    "browser_firefox": 6,
    "browser_safari": 7,
    "browser_ie": 8,
    "mobile": 9,
}

#: US Census regions by state code; "other" when the state is unknown.
STATE_REGION: Final[dict[str, str]] = {
    **dict.fromkeys(["CT", "ME", "MA", "NH", "RI", "VT", "NJ", "NY", "PA"], "northeast"),
    **dict.fromkeys(["IL", "IN", "MI", "OH", "WI", "IA", "KS", "MN", "MO", "NE", "ND", "SD"], "midwest"),
    **dict.fromkeys(
        [
            "DE",
            "DC",
            "FL",
            "GA",
            "MD",
            "NC",
            "SC",
            "VA",
            "WV",
            "AL",
            "KY",
            "MS",
            "TN",
            "AR",
            "LA",
            "OK",
            "TX",
        ],
        "south",
    ),
    **dict.fromkeys(
        ["AZ", "CO", "ID", "MT", "NV", "NM", "UT", "WY", "AK", "CA", "HI", "OR", "WA"],
        "west",
    ),
}
REGION_BITS: Final[dict[str, int]] = {"northeast": 0, "midwest": 1, "south": 2, "west": 3, "other": 4}


def user_agent_code(user_agent: str | None) -> int:
    """Bit mask of :data:`UA_BITS` for one Sparkify userAgent string (0 when unknown)."""
    if not user_agent:
        return 0
    ua = user_agent
    bits: list[str] = []
    if "iPhone" in ua or "iPad" in ua:
        bits.append("os_ios")
    elif "Android" in ua:
        bits.append("os_android")
    elif "Windows" in ua:
        bits.append("os_windows")
    elif "Macintosh" in ua or "Mac OS X" in ua:
        bits.append("os_mac")
    elif "Linux" in ua or "X11" in ua:
        bits.append("os_linux")
    if "MSIE" in ua or "Trident" in ua:
        bits.append("browser_ie")
    elif "Firefox" in ua:
        bits.append("browser_firefox")
    elif "Chrome" in ua:
        bits.append("browser_chrome")
    elif "Safari" in ua:
        bits.append("browser_safari")
    if "Mobile" in ua or "iPhone" in ua or "iPad" in ua or "Android" in ua:
        bits.append("mobile")
    return sum(1 << UA_BITS[b] for b in bits)


def location_code(location: str | None) -> int:
    """Bit mask of :data:`REGION_BITS` for a Sparkify location (``"City-Area, MA-NH"`` → first state)."""
    if not location or ", " not in location:
        return 1 << REGION_BITS["other"] if location else 0
    state = location.rsplit(", ", 1)[1].split("-", 1)[0].strip()
    return 1 << REGION_BITS[STATE_REGION.get(state, "other")]


# ---------------------------------------------------------------------------------------------------
# Level 1: measures
# ---------------------------------------------------------------------------------------------------

_ts = pl.col("ts_ms")
_is_song = pl.col("page") == SONG_PAGE
_is_paid = pl.col("level") == "paid"


def rollup_keys() -> dict[str, pl.Expr]:
    """Level 1a keys: events of one segment sharing all of these collapse into one roll-up row."""
    return {
        "page": pl.col("page"),
        "level": pl.col("level"),
        "status": pl.col("status"),
        "gender": pl.col("gender"),
        "user_agent": pl.col("user_agent"),
        "location": pl.col("location"),
        "night": (_ts // HOUR_MS) % 24 < 6,
        "weekend": ((_ts // DAY_MS) + 3) % 7 >= 5,  # 1970-01-01 was a Thursday → Monday = 0
    }


def rollup_values() -> dict[str, tuple[pl.Expr, str]]:
    """Level 1a values: per-event value and how a roll-up row reduces it (len | sum | max | min)."""
    return {
        "n": (pl.lit(1, pl.Int64), "len"),
        "length_us": (
            pl.when(_is_song).then((pl.col("length") * 1e6).round(0)).otherwise(0.0).cast(pl.Int64),
            "sum",
        ),
        "minutes": (_ts // MINUTE_MS, "sum"),
        "ts_max": (_ts, "max"),
        "ts_min": (_ts, "min"),
        "reg_max": (pl.col("registration_ms"), "max"),
    }


def rollup_aggs() -> dict[str, pl.Expr]:
    """Aggregations turning events into roll-up rows (grouped by segment and :func:`rollup_keys`)."""
    return {
        name: pl.len().cast(pl.Int64) if how == "len" else getattr(expr, how)()
        for name, (expr, how) in rollup_values().items()
    }


def _count(mask: pl.Expr, n: pl.Expr) -> pl.Expr:
    """Per roll-up row: number of events (multiplicity ``n``) matching ``mask``."""
    return mask.cast(pl.Int64) * n


def _when(mask: pl.Expr, value: pl.Expr) -> pl.Expr:
    return pl.when(mask).then(value).otherwise(None)


@lru_cache(maxsize=2)
def measure_columns(per_event: bool = False) -> dict[str, tuple[pl.Expr, str]]:
    """Level 1b: each measure as (per roll-up row int64 value, reduction ``sum`` | ``max`` | ``min``).

    Roll-up rows come from :func:`rollup_aggs` (one event = a row with ``n = 1``). Sums are additive
    measures; maxima/minima are timestamps or last-value keys (null when no event qualifies). Every
    reduction is a sum, max or min, so pre-aggregating events into roll-up rows changes nothing.
    ``per_event=True`` reads the roll-up columns straight from event columns (each event its own row).
    """
    values = {name: expr for name, (expr, _) in rollup_values().items()}
    keys = rollup_keys()

    def col(name: str) -> pl.Expr:
        if per_event and name in values:
            return values[name]
        if per_event and name in ("night", "weekend"):
            return keys[name]
        return pl.col(name)

    n = col("n")
    ts_max = col("ts_max")
    out: dict[str, tuple[pl.Expr, str]] = {
        "events": (n, "sum"),
        "songs": (_count(_is_song, n), "sum"),
        "listen_us": (col("length_us"), "sum"),
        "paid_events": (_count(_is_paid, n), "sum"),
        "paid_songs": (_count(_is_song & _is_paid, n), "sum"),
        "redirects": (_count(pl.col("status") == 307, n), "sum"),
        "night_songs": (_count(_is_song & col("night"), n), "sum"),
        "weekend_songs": (_count(_is_song & col("weekend"), n), "sum"),
        "event_minutes": (col("minutes"), "sum"),
        "song_minutes": (_is_song.cast(pl.Int64) * col("minutes"), "sum"),
    }
    for page in COUNTED_PAGES:
        out[f"page_{slug(page)}"] = (_count(pl.col("page") == page, n), "sum")
    out |= {
        "last_ts": (ts_max, "max"),
        "last_song_ts": (_when(_is_song, ts_max), "max"),
        "last_paid_key": (ts_max * 2 + _is_paid.cast(pl.Int64), "max"),
        "last_female_key": (ts_max * 2 + (pl.col("gender") == "F").cast(pl.Int64), "max"),
        "last_ua_key": (ts_max * (1 << CODE_BITS) + pl.col("ua_code"), "max"),
        "last_loc_key": (ts_max * (1 << CODE_BITS) + pl.col("loc_code"), "max"),
        "registration": (col("reg_max"), "max"),
    }
    for page in RECENCY_PAGES:
        out[f"last_{slug(page)}_ts"] = (_when(pl.col("page") == page, ts_max), "max")
    out |= {
        "first_ts": (col("ts_min"), "min"),
        "first_paid_ts": (_when(_is_paid, col("ts_min")), "min"),
    }
    return {k: (v.cast(pl.Int64), how) for k, (v, how) in out.items()}


def measure_aggs() -> tuple[dict[str, pl.Expr], dict[str, pl.Expr], dict[str, pl.Expr]]:
    """``(sums, maxima, minima)``: name → plain aggregation of the :func:`measure_columns` column."""
    cols = measure_columns()
    return (
        {k: pl.col(k).sum() for k, (_, how) in cols.items() if how == "sum"},
        {k: pl.col(k).max() for k, (_, how) in cols.items() if how == "max"},
        {k: pl.col(k).min() for k, (_, how) in cols.items() if how == "min"},
    )


def measure_row_exprs(per_event: bool = False) -> dict[str, pl.Expr]:
    """The per-row measure columns, to add with ``with_columns`` before aggregating per segment."""
    return {k: expr for k, (expr, _) in measure_columns(per_event).items()}


@dataclass(frozen=True)
class PseudoStream:
    """A derived event stream: one row per distinct ``keys`` value, at the ts of its first occurrence.

    Counting these rows in a window counts the distinct values first seen there; over the whole history
    before T it is the number of distinct values seen before T.
    """

    measure: str
    keys: tuple[str, ...]
    only_songs: bool


#: Distinct-count measures ("first occurrence" streams).
PSEUDO_STREAMS: Final[tuple[PseudoStream, ...]] = (
    PseudoStream("sessions", ("session_id",), False),
    PseudoStream("active_days", ("day",), False),
    PseudoStream("new_artists", ("artist_h",), True),
    PseudoStream("new_songs", ("artist_h", "song_h"), True),
)

#: Measures computed from sessions: ``session_ms`` (time inside sessions, truncated at T),
#: ``session_gap_ms`` / ``session_gaps`` (start-to-start gaps between consecutive sessions).
SESSION_MEASURES: Final[tuple[str, ...]] = ("session_ms", "session_gap_ms", "session_gaps")


@lru_cache(maxsize=1)
def _sum_measure_names() -> tuple[str, ...]:
    sums, _, _ = measure_aggs()
    return (*sums, *(s.measure for s in PSEUDO_STREAMS), *SESSION_MEASURES)


def sum_measure_names() -> list[str]:
    """Names of all additive measures, in a fixed order."""
    return list(_sum_measure_names())


def window_offsets(cfg: FeaturesConfig) -> list[int]:
    """Day offsets whose boundaries ``T - offset`` are needed: every window w and the window before it."""
    return sorted({0} | {w for w in cfg.windows_days} | {2 * w for w in cfg.windows_days})


# ---------------------------------------------------------------------------------------------------
# Level 3: features over the window frame
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureSpec:
    """One registered feature: ``name`` = ``family__short_name``; dtype is the Polars dtype name."""

    name: str
    family: str
    description: str
    dtype: str = "float64"


FAMILIES: Final[tuple[str, ...]] = (
    "activity",
    "engagement",
    "session",
    "recency",
    "subscription",
    "friction",
    "content",
)


Value = int | float | None
Env = dict[str, Value]


class Term:
    """A feature formula over the window frame, written once and executed two ways.

    :meth:`polars` gives the Polars expression (offline and Spark, vectorised over all cutoffs);
    :meth:`value` evaluates the same formula on one row's values (online, no per-call query engine).
    Nulls propagate; every column is read as float64 except the integer key helpers.
    """

    def polars(self) -> pl.Expr:
        raise NotImplementedError

    def value(self, env: Env) -> Value:
        raise NotImplementedError

    def __add__(self, other: Term | float) -> Term:
        return _Bin("+", self, _term(other))

    def __radd__(self, other: float) -> Term:
        return _Bin("+", _term(other), self)

    def __sub__(self, other: Term | float) -> Term:
        return _Bin("-", self, _term(other))

    def __rsub__(self, other: float) -> Term:
        return _Bin("-", _term(other), self)

    def __mul__(self, other: Term | float) -> Term:
        return _Bin("*", self, _term(other))

    def __rmul__(self, other: float) -> Term:
        return _Bin("*", _term(other), self)

    def __truediv__(self, other: float) -> Term:
        """Division by a non-zero constant, done as multiplication by its reciprocal.

        Polars itself multiplies by the reciprocal for a scalar divisor on long columns but divides on
        one-row frames; an explicit reciprocal makes every execution round identically.
        """
        if not isinstance(other, int | float) or other == 0:
            raise TypeError("Term / x needs a non-zero constant; use _ratio for columns")
        return _Bin("*", self, _Lit(1.0 / float(other)))

    def fill_null(self, other: Term) -> Term:
        return _FillNull(self, other)


@dataclass(frozen=True, eq=False)
class _Lit(Term):
    v: float

    def polars(self) -> pl.Expr:
        return pl.lit(self.v, pl.Float64)

    def value(self, env: Env) -> Value:
        return self.v


@dataclass(frozen=True, eq=False)
class _Col(Term):
    name: str

    def polars(self) -> pl.Expr:
        return pl.col(self.name).cast(pl.Float64)

    def value(self, env: Env) -> Value:
        v = env[self.name]
        return None if v is None else float(v)


@dataclass(frozen=True, eq=False)
class _IntOf(Term):
    """``((col // div) % mod)`` on the int64 column, as float64 (``mod`` 0: no modulo)."""

    name: str
    div: int
    mod: int

    def polars(self) -> pl.Expr:
        e = pl.col(self.name) // self.div
        return (e % self.mod if self.mod else e).cast(pl.Float64)

    def value(self, env: Env) -> Value:
        v = env[self.name]
        if v is None:
            return None
        r = int(v) // self.div
        return float(r % self.mod if self.mod else r)


_OPS: Final[dict[str, Callable[[float, float], float]]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
}


@dataclass(frozen=True, eq=False)
class _Bin(Term):
    op: str
    a: Term
    b: Term

    def polars(self) -> pl.Expr:
        a, b = self.a.polars(), self.b.polars()
        return {"+": a + b, "-": a - b, "*": a * b}[self.op]

    def value(self, env: Env) -> Value:
        a = self.a.value(env)
        if a is None:
            return None
        b = self.b.value(env)
        return None if b is None else _OPS[self.op](a, b)


@dataclass(frozen=True, eq=False)
class _Ratio(Term):
    """num / den, null where den is null or not positive (undefined)."""

    num: Term
    den: Term

    def polars(self) -> pl.Expr:
        den = self.den.polars()
        return pl.when(den > 0).then(self.num.polars() / den).otherwise(None)

    def value(self, env: Env) -> Value:
        den = self.den.value(env)
        if den is None or not den > 0:
            return None
        num = self.num.value(env)
        return None if num is None else num / den


@dataclass(frozen=True, eq=False)
class _FillNull(Term):
    a: Term
    b: Term

    def polars(self) -> pl.Expr:
        return self.a.polars().fill_null(self.b.polars())

    def value(self, env: Env) -> Value:
        a = self.a.value(env)
        return self.b.value(env) if a is None else a


def _term(x: Term | float) -> Term:
    return x if isinstance(x, Term) else _Lit(float(x))


def _c(measure: str, window: str) -> Term:
    return _Col(f"{measure}__{window}")


def _ratio(num: Term, den: Term) -> Term:
    """num / den, null where den is 0 (undefined)."""
    return _Ratio(num, den)


def _days_since(col: str) -> Term:
    return (_Col("T") - _Col(col)) / DAY_MS


def _last_bit(key: str, bit: int) -> Term:
    """Bit ``bit`` of the code packed in a last-value key (``ts * 2**CODE_BITS + code``)."""
    return _IntOf(key, 1 << bit, 2) if bit < CODE_BITS else _Lit(0.0)


def _window_label(window: str) -> str:
    if window == "all":
        return "over all history before the cutoff"
    return f"in the {window[:-1]} days before the cutoff"


def feature_definitions(cfg: FeaturesConfig) -> list[tuple[FeatureSpec, Term]]:
    """Every feature as (spec, formula over the window frame), in registry order (cached per windows)."""
    return list(_feature_definitions(tuple(cfg.windows_days)))


def feature_exprs(cfg: FeaturesConfig) -> list[pl.Expr]:
    """The features as Polars expressions (float64, aliased to their names), in registry order."""
    return list(_feature_exprs(tuple(cfg.windows_days)))


@lru_cache(maxsize=8)
def _feature_exprs(windows_days: tuple[int, ...]) -> tuple[pl.Expr, ...]:
    return tuple(t.polars().alias(s.name) for s, t in _feature_definitions(windows_days))


def evaluate_features(cfg: FeaturesConfig, env: Env) -> list[Value]:
    """The features evaluated on one window-frame row ``env`` (column → value), in registry order."""
    return [t.value(env) for _, t in _feature_definitions(tuple(cfg.windows_days))]


@lru_cache(maxsize=8)
def _feature_definitions(windows_days: tuple[int, ...]) -> tuple[tuple[FeatureSpec, Term], ...]:
    """Build the definitions for the given windows.

    The window frame has ``T`` (cutoff, epoch ms), ``<measure>__all``, ``<measure>__<w>d``,
    ``<measure>__p<w>d`` for additive measures and the maxima/minima by name.
    """
    if not windows_days or any(w <= 0 for w in windows_days) or len(set(windows_days)) != len(windows_days):
        raise ValueError(
            f"features.windows_days: distinct positive day counts expected, got {list(windows_days)}"
        )
    wins = ["all", *[f"{w}d" for w in windows_days]]
    out: list[tuple[FeatureSpec, Term]] = []

    def add(family: str, name: str, description: str, term: Term) -> None:
        full = f"{family}__{name}"
        out.append((FeatureSpec(full, family, description), term))

    def add_windows(family: str, stem: str, what: str, fn: Callable[[str], Term]) -> None:
        for win in wins:
            add(family, f"{stem}_{win}", f"{what} {_window_label(win)}", fn(win))

    # activity volume -------------------------------------------------------------------------------
    add_windows("activity", "events", "Events (any page)", lambda w: _c("events", w))
    add_windows("activity", "songs", "Songs played (NextSong)", lambda w: _c("songs", w))
    add_windows("activity", "sessions", "Sessions started", lambda w: _c("sessions", w))
    add_windows("activity", "active_days", "Distinct UTC days with an event", lambda w: _c("active_days", w))
    add_windows(
        "activity", "listen_hours", "Listening time in hours", lambda w: _c("listen_us", w) / (HOUR_MS * 1000)
    )
    add_windows(
        "activity",
        "songs_per_active_day",
        "Songs per active day",
        lambda w: _ratio(_c("songs", w), _c("active_days", w)),
    )
    add_windows(
        "activity",
        "song_share",
        "Share of events that are songs",
        lambda w: _ratio(_c("songs", w), _c("events", w)),
    )

    # engagement ------------------------------------------------------------------------------------
    for page, stem in (
        ("Thumbs Up", "thumbs_up"),
        ("Thumbs Down", "thumbs_down"),
        ("Add to Playlist", "playlist_adds"),
        ("Add Friend", "friend_adds"),
    ):
        m = f"page_{slug(page)}"
        add_windows("engagement", stem, f"'{page}' events", lambda w, m=m: _c(m, w))
        add_windows(
            "engagement",
            f"{stem}_per_song",
            f"'{page}' events per song played",
            lambda w, m=m: _ratio(_c(m, w), _c("songs", w)),
        )
    add_windows(
        "engagement",
        "thumbs_down_share",
        "Thumbs down / (thumbs up + thumbs down)",
        lambda w: _ratio(_c("page_thumbs_down", w), _c("page_thumbs_up", w) + _c("page_thumbs_down", w)),
    )
    add_windows(
        "engagement",
        "net_thumbs_per_song",
        "(Thumbs up - thumbs down) per song played",
        lambda w: _ratio(_c("page_thumbs_up", w) - _c("page_thumbs_down", w), _c("songs", w)),
    )

    # session behaviour -----------------------------------------------------------------------------
    add_windows(
        "session",
        "songs_per_session",
        "Songs per session started",
        lambda w: _ratio(_c("songs", w), _c("sessions", w)),
    )
    add_windows(
        "session",
        "events_per_session",
        "Events per session started",
        lambda w: _ratio(_c("events", w), _c("sessions", w)),
    )
    add_windows(
        "session",
        "mean_session_hours",
        "Time inside sessions (first to last event, truncated at the cutoff) per session, hours",
        lambda w: _ratio(_c("session_ms", w), _c("sessions", w)) / HOUR_MS,
    )
    add_windows(
        "session",
        "mean_gap_hours",
        "Mean start-to-start gap between consecutive sessions, hours (gap counted when the later starts)",
        lambda w: _ratio(_c("session_gap_ms", w), _c("session_gaps", w)) / HOUR_MS,
    )
    add_windows(
        "session",
        "sessions_per_active_day",
        "Sessions started per active day",
        lambda w: _ratio(_c("sessions", w), _c("active_days", w)),
    )
    add_windows(
        "session",
        "logouts_per_session",
        "Logout events per session started",
        lambda w: _ratio(_c("page_logout", w), _c("sessions", w)),
    )

    # recency and trend -----------------------------------------------------------------------------
    add("recency", "days_since_last_event", "Days from the last event to the cutoff", _days_since("last_ts"))
    add(
        "recency",
        "days_since_last_song",
        "Days from the last song to the cutoff",
        _days_since("last_song_ts"),
    )
    for page in RECENCY_PAGES[:8]:
        add(
            "recency",
            f"days_since_last_{slug(page)}",
            f"Days from the last '{page}' event to the cutoff (null if none)",
            _days_since(f"last_{slug(page)}_ts"),
        )
    add(
        "recency",
        "days_since_first_event",
        "Days from the first event to the cutoff",
        _days_since("first_ts"),
    )
    add(
        "recency",
        "active_span_days",
        "Days between the first and the last event before the cutoff",
        (_Col("last_ts") - _Col("first_ts")) / DAY_MS,
    )
    for w in windows_days:
        for m, what in (
            ("events", "events"),
            ("songs", "songs"),
            ("sessions", "sessions"),
            ("listen_us", "listening time"),
            ("page_thumbs_up", "thumbs up"),
            ("active_days", "active days"),
        ):
            add(
                "recency",
                f"{slug(what)}_ratio_{w}d_vs_prev",
                f"{what.capitalize()} in the last {w} days / in the {w} days before (null if none before)",
                _ratio(_c(m, f"{w}d"), _c(m, f"p{w}d")),
            )
        add(
            "recency",
            f"songs_per_day_change_{w}d",
            f"Songs per day in the last {w} days minus songs per day in the {w} days before",
            (_c("songs", f"{w}d") - _c("songs", f"p{w}d")) / w,
        )
        for m, minutes, what in (("events", "event_minutes", "events"), ("songs", "song_minutes", "songs")):
            n = _c(m, f"{w}d")
            mean_age_days = _ratio(n * _IntOf("T", MINUTE_MS, 0) - _c(minutes, f"{w}d"), n) / (
                DAY_MS // MINUTE_MS
            )
            add(
                "recency",
                f"{what}_trend_{w}d",
                f"Trend of {what} within the last {w} days: 1 - 2 x mean event age / {w} "
                "(>0: activity concentrated near the cutoff, 0: flat; slope of a linear intensity fit)",
                1.0 - 2.0 * mean_age_days / w,
            )
        add(
            "recency",
            f"song_share_last_{w}d",
            f"Share of all songs before the cutoff played in the last {w} days",
            _ratio(_c("songs", f"{w}d"), _c("songs", "all")),
        )

    # subscription ----------------------------------------------------------------------------------
    add(
        "subscription",
        "is_paid",
        "1 if the latest event before the cutoff is on the paid level",
        _IntOf("last_paid_key", 1, 2),
    )
    add(
        "subscription",
        "tenure_days",
        "Days from registration (or the first event when unknown) to the cutoff",
        _days_since("registration").fill_null(_days_since("first_ts")),
    )
    add(
        "subscription",
        "days_since_first_paid",
        "Days from the first paid-level event to the cutoff (null if never paid)",
        _days_since("first_paid_ts"),
    )
    add_windows(
        "subscription",
        "paid_event_share",
        "Share of events on the paid level",
        lambda w: _ratio(_c("paid_events", w), _c("events", w)),
    )
    add_windows(
        "subscription",
        "paid_song_share",
        "Share of songs played on the paid level",
        lambda w: _ratio(_c("paid_songs", w), _c("songs", w)),
    )
    for page, stem in (
        ("Submit Upgrade", "upgrades"),
        ("Submit Downgrade", "downgrades"),
        ("Upgrade", "upgrade_page_visits"),
        ("Downgrade", "downgrade_page_visits"),
        ("Roll Advert", "adverts"),
    ):
        add_windows("subscription", stem, f"'{page}' events", lambda w, m=f"page_{slug(page)}": _c(m, w))
    add_windows(
        "subscription",
        "adverts_per_song",
        "Adverts rolled per song played",
        lambda w: _ratio(_c("page_roll_advert", w), _c("songs", w)),
    )
    for page in RECENCY_PAGES[8:]:
        add(
            "subscription",
            f"days_since_last_{slug(page)}",
            f"Days from the last '{page}' event to the cutoff (null if none)",
            _days_since(f"last_{slug(page)}_ts"),
        )

    # friction --------------------------------------------------------------------------------------
    for page, stem in (
        ("Error", "errors"),
        ("Help", "help"),
        ("Settings", "settings"),
        ("Save Settings", "save_settings"),
        ("About", "about"),
        ("Home", "home"),
    ):
        add_windows("friction", stem, f"'{page}' events", lambda w, m=f"page_{slug(page)}": _c(m, w))
    add_windows(
        "friction", "redirects", "Events answered with HTTP 307 (redirect)", lambda w: _c("redirects", w)
    )
    for page, stem in (("Error", "errors"), ("Help", "help"), ("Settings", "settings")):
        add_windows(
            "friction",
            f"{stem}_per_100_events",
            f"'{page}' events per 100 events",
            lambda w, m=f"page_{slug(page)}": 100.0 * _ratio(_c(m, w), _c("events", w)),
        )

    # content and context ---------------------------------------------------------------------------
    add("content", "distinct_artists", "Distinct artists played before the cutoff", _c("new_artists", "all"))
    add(
        "content",
        "distinct_songs",
        "Distinct (artist, song) pairs played before the cutoff",
        _c("new_songs", "all"),
    )
    add(
        "content",
        "artists_per_song",
        "Distinct artists / songs played (all history)",
        _ratio(_c("new_artists", "all"), _c("songs", "all")),
    )
    for w in windows_days:
        add(
            "content",
            f"new_artists_{w}d",
            f"Artists first played in the last {w} days",
            _c("new_artists", f"{w}d"),
        )
        add(
            "content", f"new_songs_{w}d", f"Songs first played in the last {w} days", _c("new_songs", f"{w}d")
        )
    add_windows(
        "content",
        "repeat_play_share",
        "Share of plays that are repeats of a song played earlier",
        lambda w: _ratio(_c("songs", w) - _c("new_songs", w), _c("songs", w)),
    )
    add_windows(
        "content",
        "mean_song_minutes",
        "Mean song length in minutes",
        lambda w: _ratio(_c("listen_us", w), _c("songs", w)) / (MINUTE_MS * 1000),
    )
    add_windows(
        "content",
        "night_song_share",
        "Share of songs played 00-06 UTC",
        lambda w: _ratio(_c("night_songs", w), _c("songs", w)),
    )
    add_windows(
        "content",
        "weekend_song_share",
        "Share of songs played on Saturday or Sunday (UTC)",
        lambda w: _ratio(_c("weekend_songs", w), _c("songs", w)),
    )
    for name, bit in UA_BITS.items():
        add(
            "content",
            f"ua_{name}",
            f"User agent of the latest event: {name.replace('_', ' ')}",
            _last_bit("last_ua_key", bit),
        )
    for name, bit in REGION_BITS.items():
        add(
            "content",
            f"region_{name}",
            f"Census region of the latest event's state: {name}",
            _last_bit("last_loc_key", bit),
        )
    add("content", "gender_f", "1 if the latest event's gender is F", _IntOf("last_female_key", 1, 2))
    return tuple(out)
