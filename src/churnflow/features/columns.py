"""Level 0 of the feature definition: the event columns every measure reads, written once.

* :func:`input_columns` — raw input → typed input columns (epoch ms, int64, float64, strings).
* :data:`EVENT_COLUMNS` — per-event columns (epoch ms, listening microseconds, artist and (artist, song)
  hashes) and :data:`KEY_COLUMNS` — integer codes of the categorical strings (page code, paid, female;
  user-agent and census-region bit masks), written in :mod:`churnflow.features.expr` over the typed
  inputs, so they compile to Polars (offline, over all events; the key columns once per roll-up row:
  events sharing all :data:`ROLLUP_KEYS` in a segment) and to numpy (online, over one user's events;
  a function of a string runs once per distinct string).
* :data:`TS_COLUMNS` — values derived from an event's ts (UTC day, minutes, night, weekend), in the same
  language.

Invariant: every column is an integer (or boolean) function of one event; the measures
(:mod:`churnflow.features.measures`) aggregate them exactly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Final

import polars as pl

from churnflow.data.schema import PAGES
from churnflow.features.expr import Col, Cond, IntExpr, Real, Text

DAY_MS: Final[int] = 86_400_000
HOUR_MS: Final[int] = 3_600_000
MINUTE_MS: Final[int] = 60_000
#: Last-value keys pack ``ts_ms * 2**CODE_BITS + code``: the max picks the code of the latest event
#: (ties at the same millisecond resolve to the larger code, whatever the input order).
CODE_BITS: Final[int] = 20
#: Timestamps must fit 42 bits of milliseconds (before 2109) so (user, ts) packs into one int64 key.
TS_BITS: Final[int] = 42
TS_LIMIT: Final[int] = 1 << TS_BITS
#: Seed of the artist / (artist, song) hashes behind the distinct counts (a collision within one user's
#: catalogue, ~n²/2**65 for n distinct songs, would merge two songs).
HASH_SEED: Final[int] = 20_181_001

SONG_PAGE: Final[str] = "NextSong"
#: Page → small integer code (``page_code``; -1: null or a page outside the schema).
PAGE_CODE: Final[dict[str, int]] = {p: i for i, p in enumerate(PAGES)}

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
#: Columns a roll-up row shares (its events are aggregated); the key and context columns read only these.
ROLLUP_KEYS: Final[tuple[str, ...]] = (
    "page",
    "level",
    "status",
    "gender",
    "user_agent",
    "location",
    "night",
    "weekend",
)
#: Per-event values aggregated inside a roll-up row (``n``: the event count, 1 per event).
VALUE_COLUMNS: Final[frozenset[str]] = frozenset({"n", "ts_ms", "minutes", "length_us", "registration_ms"})


class FeatureInputError(ValueError):
    """Events or cutoffs that the feature engine cannot use; the message names the field."""


def slug(text: str) -> str:
    """``"Thumbs Up"`` → ``"thumbs_up"``: a page name as a column-name fragment."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


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
# The columns
# ---------------------------------------------------------------------------------------------------


def epoch_ms(name: str, dtype: pl.DataType) -> pl.Expr:
    """A datetime (any unit/zone) or integer epoch-ms column as int64 epoch milliseconds."""
    if isinstance(dtype, pl.Datetime):
        return pl.col(name).dt.epoch("ms")
    if dtype.is_integer():
        return pl.col(name).cast(pl.Int64)
    raise FeatureInputError(f"events.{name}: expected a Datetime or integer epoch-ms column, got {dtype}")


def as_string(name: str, dtype: pl.DataType) -> pl.Expr:
    """A string, categorical, enum or all-null column as String (anything else: FeatureInputError)."""
    if dtype == pl.String:
        return pl.col(name)
    if isinstance(dtype, pl.Categorical | pl.Enum) or dtype == pl.Null:
        return pl.col(name).cast(pl.String)
    raise FeatureInputError(f"events.{name}: expected a string or categorical column, got {dtype}")


def check_event_columns(schema: Collection[str]) -> None:
    """Raise :class:`FeatureInputError` naming the :data:`REQUIRED_EVENT_COLUMNS` that are missing."""
    missing = [c for c in REQUIRED_EVENT_COLUMNS if c not in schema]
    if missing:
        raise FeatureInputError(f"events: missing column(s) {missing}")


def check_ts(nulls: int, lo: int | None, hi: int | None) -> None:
    """Raise :class:`FeatureInputError` for null timestamps or epoch ms ``lo``..``hi`` outside the range."""
    if nulls:
        raise FeatureInputError(f"events.ts: {nulls} null timestamp(s)")
    if lo is not None and hi is not None and (lo < 0 or hi >= TS_LIMIT):
        raise FeatureInputError(f"events.ts: epoch ms outside [0, 2**{TS_BITS}) (min {lo}, max {hi})")


#: Typed input columns (:func:`input_column`) holding strings, the one holding floats, and those read
#: as epoch ms; the others (session_id, status) are int64.
EPOCH_INPUTS: Final[tuple[str, ...]] = ("ts", "registration")
TEXT_INPUTS: Final[tuple[str, ...]] = ("page", "level", "gender", "user_agent", "location", "artist", "song")
REAL_INPUTS: Final[frozenset[str]] = frozenset({"length"})


def as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    """A string-like column as itself when categorical or enum (cheap to compare), else as String."""
    expr = as_string(name, dtype)  # validates the dtype
    return pl.col(name) if isinstance(dtype, pl.Categorical | pl.Enum) else expr


def input_column(name: str, dtype: pl.DataType) -> pl.Expr:
    """Raw event column ``name`` of ``dtype`` → the typed column the level-0 expressions read.

    ``ts`` and ``registration`` as int64 epoch ms, ``session_id`` and ``status`` int64, ``length``
    float64, the :data:`TEXT_INPUTS` as strings (categoricals kept). Raises :class:`FeatureInputError`
    for a column of the wrong type.
    """
    if name in TEXT_INPUTS:
        return as_text(name, dtype)
    if name in REAL_INPUTS:
        return pl.col(name).cast(pl.Float64)
    if name in EPOCH_INPUTS:
        return epoch_ms(name, dtype)
    return pl.col(name).cast(pl.Int64)


def input_columns(schema: pl.Schema) -> dict[str, pl.Expr]:
    """:func:`input_column` of every input the level-0 expressions read."""
    return {
        c: input_column(c, schema[c])
        for c in (*EPOCH_INPUTS, "session_id", "status", *REAL_INPUTS, *TEXT_INPUTS)
    }


def _page_code(page: str) -> int:
    return PAGE_CODE.get(page, -1)


_PAGE, _ARTIST, _SONG = Text("page"), Text("artist"), Text("song")
_IS_SONG = _PAGE.equals(SONG_PAGE)
_PLAYED = _IS_SONG & _ARTIST.is_not_null()

#: Per-event columns over the typed inputs: ``ts_ms``, ``session_id``, ``registration_ms``, ``status``;
#: ``length_us`` (song length in integer microseconds; 0 for other pages, null for a song without a
#: length); ``artist_h`` and ``song_h``: 64-bit hashes of the artist and of (artist, song), null unless
#: the event is a song with an artist, so the distinct counts group on integers.
EVENT_COLUMNS: Final[dict[str, IntExpr]] = {
    "ts_ms": Col("ts"),
    "session_id": Col("session_id"),
    "registration_ms": Col("registration"),
    "status": Col("status"),
    "length_us": Real("length", 1e6).where(_IS_SONG, otherwise=0),
    "artist_h": _ARTIST.hash(HASH_SEED).where(_PLAYED),
    "song_h": (_ARTIST.hash(HASH_SEED) ^ _SONG.hash(HASH_SEED + 1)).where(_PLAYED & _SONG.is_not_null()),
}

#: Integer codes of an event's strings, reading only :data:`ROLLUP_KEYS` (offline: once per roll-up
#: row): ``page_code`` (:data:`PAGE_CODE`, -1 when null or unknown), ``paid`` (level == "paid"),
#: ``female`` (gender == "F"), ``ua_code`` / ``loc_code`` (:func:`user_agent_code` /
#: :func:`location_code` bit masks); null where the string is null, but ``page_code``.
KEY_COLUMNS: Final[dict[str, IntExpr]] = {
    "page_code": _PAGE.code(_page_code, null=-1),
    "paid": Text("level").code(lambda level: int(level == "paid")),
    "female": Text("gender").code(lambda gender: int(gender == "F")),
    "ua_code": Text("user_agent").code(user_agent_code),
    "loc_code": Text("location").code(location_code),
}


def event_columns(schema: pl.Schema) -> dict[str, pl.Expr]:
    """Raw input → the prepared per-event columns of the offline execution (name → expression).

    :data:`EVENT_COLUMNS` (int64) and the string :data:`ROLLUP_KEYS` (``page`` and ``level`` as typed,
    ``gender``, ``user_agent``, ``location`` as categoricals). Raises :class:`FeatureInputError` for a
    column of the wrong type.
    """
    typed = input_columns(schema)
    return {
        **{c: e.polars(typed.__getitem__).alias(c) for c, e in EVENT_COLUMNS.items()},
        "page": typed["page"],
        "level": typed["level"],
        **{c: typed[c].cast(pl.Categorical) for c in ("gender", "user_agent", "location")},
    }


TS: Final[Col] = Col("ts_ms")
#: Values derived from an event's ts: UTC day number, epoch minutes, night (00-06 UTC), weekend
#: (Saturday or Sunday UTC; 1970-01-01 was a Thursday, so Monday = 0).
TS_COLUMNS: Final[dict[str, IntExpr | Cond]] = {
    "day": TS // DAY_MS,
    "minutes": TS // MINUTE_MS,
    "night": ((TS // HOUR_MS) % 24).below(6),
    "weekend": ((TS // DAY_MS + 3) % 7).at_least(5),
}


def key_columns(col: Callable[[str], pl.Expr]) -> dict[str, pl.Expr]:
    """:data:`KEY_COLUMNS` as Polars expressions; ``col(name)`` reads the string column ``name``."""
    return {c: e.polars(col).alias(c) for c, e in KEY_COLUMNS.items()}
