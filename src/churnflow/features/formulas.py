"""Level 3 of the feature definition: every feature as a formula over the window values, written once.

A formula is a small :class:`Term` tree over the window frame (``T``, ``<measure>__<window>`` and the
maxima/minima by name, see :mod:`churnflow.features.measures`): ratios, ``+ - *``, division by a
constant, ``fill_null`` and integer bit extraction. :meth:`Term.polars` compiles it to a Polars
expression (offline and Spark, vectorised over every cutoff); :meth:`Term.value` evaluates it on one
row of values (online). Each formula comes with its :class:`FeatureSpec` (name ``family__name``,
family, description, dtype), in registry order.

Invariant: both compilations do the same float64 operations in the same order, so they agree bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import polars as pl

from churnflow.config.features import FeaturesConfig
from churnflow.features.columns import CODE_BITS, DAY_MS, HOUR_MS, MINUTE_MS, REGION_BITS, UA_BITS, slug
from churnflow.features.measures import RECENCY_PAGES


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
    wins = ["all", *[f"{w}d" for w in windows_days]]
    out: list[tuple[FeatureSpec, Term]] = []

    def add(family: str, name: str, description: str, term: Term) -> None:
        full = f"{family}__{name}"
        out.append((FeatureSpec(full, family, description), term))

    def add_windows(family: str, stem: str, what: str, fn: Callable[[str], Term]) -> None:
        for win in wins:
            add(family, f"{stem}_{win}", f"{what} {_window_label(win)}", fn(win))

    def add_count(family: str, stem: str, what: str, measure: str) -> None:
        add_windows(family, stem, what, lambda w: _c(measure, w))

    def add_ratio(family: str, stem: str, what: str, num: str, den: str) -> None:
        add_windows(family, stem, what, lambda w: _ratio(_c(num, w), _c(den, w)))

    def add_page_counts(family: str, stems: dict[str, str]) -> None:
        for page, stem in stems.items():
            add_count(family, stem, f"'{page}' events", f"page_{slug(page)}")

    def add_days_since_pages(family: str) -> None:
        for page in (p for p, f in RECENCY_PAGES.items() if f == family):
            add(
                family,
                f"days_since_last_{slug(page)}",
                f"Days from the last '{page}' event to the cutoff (null if none)",
                _days_since(f"last_{slug(page)}_ts"),
            )

    # activity volume -------------------------------------------------------------------------------
    add_count("activity", "events", "Events (any page)", "events")
    add_count("activity", "songs", "Songs played (NextSong)", "songs")
    add_count("activity", "sessions", "Sessions started", "sessions")
    add_count("activity", "active_days", "Distinct UTC days with an event", "active_days")
    add_windows(
        "activity", "listen_hours", "Listening time in hours", lambda w: _c("listen_us", w) / (HOUR_MS * 1000)
    )
    add_ratio("activity", "songs_per_active_day", "Songs per active day", "songs", "active_days")
    add_ratio("activity", "song_share", "Share of events that are songs", "songs", "events")

    # engagement ------------------------------------------------------------------------------------
    engagement = {
        "Thumbs Up": "thumbs_up",
        "Thumbs Down": "thumbs_down",
        "Add to Playlist": "playlist_adds",
        "Add Friend": "friend_adds",
    }
    for page, stem in engagement.items():
        add_page_counts("engagement", {page: stem})
        add_ratio(
            "engagement",
            f"{stem}_per_song",
            f"'{page}' events per song played",
            f"page_{slug(page)}",
            "songs",
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
    add_ratio("session", "songs_per_session", "Songs per session started", "songs", "sessions")
    add_ratio("session", "events_per_session", "Events per session started", "events", "sessions")
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
    add_ratio(
        "session", "sessions_per_active_day", "Sessions started per active day", "sessions", "active_days"
    )
    add_ratio(
        "session", "logouts_per_session", "Logout events per session started", "page_logout", "sessions"
    )

    # recency and trend -----------------------------------------------------------------------------
    add("recency", "days_since_last_event", "Days from the last event to the cutoff", _days_since("last_ts"))
    add(
        "recency",
        "days_since_last_song",
        "Days from the last song to the cutoff",
        _days_since("last_song_ts"),
    )
    add_days_since_pages("recency")
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
    add_ratio(
        "subscription", "paid_event_share", "Share of events on the paid level", "paid_events", "events"
    )
    add_ratio(
        "subscription", "paid_song_share", "Share of songs played on the paid level", "paid_songs", "songs"
    )
    add_page_counts(
        "subscription",
        {
            "Submit Upgrade": "upgrades",
            "Submit Downgrade": "downgrades",
            "Upgrade": "upgrade_page_visits",
            "Downgrade": "downgrade_page_visits",
            "Roll Advert": "adverts",
        },
    )
    add_ratio(
        "subscription", "adverts_per_song", "Adverts rolled per song played", "page_roll_advert", "songs"
    )
    add_days_since_pages("subscription")

    # friction --------------------------------------------------------------------------------------
    friction = {"Error": "errors", "Help": "help", "Settings": "settings"}
    add_page_counts(
        "friction", {**friction, "Save Settings": "save_settings", "About": "about", "Home": "home"}
    )
    add_count("friction", "redirects", "Events answered with HTTP 307 (redirect)", "redirects")
    for page, stem in friction.items():
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
    add_ratio("content", "night_song_share", "Share of songs played 00-06 UTC", "night_songs", "songs")
    add_ratio(
        "content",
        "weekend_song_share",
        "Share of songs played on Saturday or Sunday (UTC)",
        "weekend_songs",
        "songs",
    )
    for name, bit in UA_BITS.items():
        desc = f"User agent of the latest event: {name.replace('_', ' ')}"
        add("content", f"ua_{name}", desc, _last_bit("last_ua_key", bit))
    for name, bit in REGION_BITS.items():
        desc = f"Census region of the latest event's state: {name}"
        add("content", f"region_{name}", desc, _last_bit("last_loc_key", bit))
    add("content", "gender_f", "1 if the latest event's gender is F", _IntOf("last_female_key", 1, 2))
    return tuple(out)
