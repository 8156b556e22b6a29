"""Level 0 of the feature definition: the event columns every measure reads, written once.

* :func:`event_columns` — raw input → typed per-event columns (epoch ms, listening microseconds, artist
  and (artist, song) hashes, the categorical strings): Polars expressions both executions run (offline
  over all events, online over one user's events).
* :data:`TS_COLUMNS` — values derived from an event's ts (UTC day, minutes, night, weekend), written in
  :mod:`churnflow.features.expr` so they compile to Polars (offline) and numpy (online).
* :func:`key_columns` and :func:`context_columns` — integer codes of the categorical strings (page code,
  paid, female; user-agent and census-region bit masks). Offline computes them once per roll-up row
  (events sharing all :data:`ROLLUP_KEYS` in a segment), online once per event; both from the same
  expressions.

Invariant: every column is an integer (or boolean) function of one event; the measures
(:mod:`churnflow.features.measures`) aggregate them exactly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

import polars as pl

from churnflow.data.schema import PAGES
from churnflow.features.expr import Col, Cond, IntExpr

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


def _code_expr(values: pl.Series, fn: Callable[[str], int]) -> pl.Expr:
    """``fn`` of each string of column ``values.name`` as an int64 expression (nulls stay null).

    ``fn`` runs once per distinct string of ``values``; a column of one non-null string is a literal.
    """
    if values.null_count() == 0 and values.n_unique() == 1:  # one user's request: usually one value
        return pl.lit(fn(str(values[0])), pl.Int64)
    distinct = [v for v in values.cast(pl.String).unique().sort().to_list() if v is not None]
    codes = [fn(v) for v in distinct]
    return (
        pl.col(values.name)
        .cast(pl.String)
        .replace_strict(distinct, codes, default=None, return_dtype=pl.Int64)
    )


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


def check_event_columns(schema: pl.Schema) -> None:
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


def event_columns(schema: pl.Schema) -> dict[str, pl.Expr]:
    """Raw input → typed per-event columns (name → expression over the raw columns).

    ``ts_ms``, ``session_id``, ``registration_ms`` (int64); ``length_us`` (song length in integer
    microseconds; 0 for other pages, null for a song without a length); ``page`` (categorical kept, else
    string), ``level``, ``status`` (int64); ``gender``, ``user_agent``, ``location`` as categoricals;
    ``artist_h`` and ``song_h``: 64-bit hashes of the artist and of (artist, song), as int64, null unless
    the event is a song with an artist, so the distinct counts group on integers. Raises
    :class:`FeatureInputError` for a column of the wrong type.
    """
    page = schema["page"]
    artist = as_string("artist", schema["artist"])
    song = as_string("song", schema["song"])
    is_song = pl.col("page") == SONG_PAGE
    played = is_song & artist.is_not_null()
    return {
        "ts_ms": epoch_ms("ts", schema["ts"]),
        "session_id": pl.col("session_id").cast(pl.Int64),
        "page": pl.col("page") if isinstance(page, pl.Categorical | pl.Enum) else as_string("page", page),
        "level": pl.col("level"),
        "status": pl.col("status").cast(pl.Int64),
        "length_us": pl.when(is_song)
        .then((pl.col("length").cast(pl.Float64) * 1e6).round(0))
        .otherwise(0.0)
        .cast(pl.Int64),
        "artist_h": pl.when(played).then(artist.hash(HASH_SEED).reinterpret(signed=True)),
        "song_h": pl.when(played & song.is_not_null()).then(
            (artist.hash(HASH_SEED) ^ song.hash(HASH_SEED + 1)).reinterpret(signed=True)
        ),
        **{c: as_string(c, schema[c]).cast(pl.Categorical) for c in ("gender", "user_agent", "location")},
        "registration_ms": epoch_ms("registration", schema["registration"]),
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
    """Integer codes of an event's page, level and gender (int64; null where the string is null).

    ``page_code`` (:data:`PAGE_CODE`, -1 when null or unknown), ``paid`` (level == "paid"), ``female``
    (gender == "F"). ``col(name)`` reads the column ``name`` (or an expression standing for it).
    """
    return {
        "page_code": col("page")
        .replace_strict(list(PAGE_CODE), list(PAGE_CODE.values()), default=-1, return_dtype=pl.Int64)
        .fill_null(-1),
        "paid": (col("level") == "paid").cast(pl.Int64),
        "female": (col("gender") == "F").cast(pl.Int64),
    }


def context_columns(frame: pl.DataFrame) -> dict[str, pl.Expr]:
    """``ua_code`` / ``loc_code``: the :func:`user_agent_code` / :func:`location_code` bit masks of the
    ``user_agent`` / ``location`` columns of ``frame`` (computed once per distinct string; int64, null
    where the string is null).
    """
    return {
        "ua_code": _code_expr(frame.get_column("user_agent"), user_agent_code),
        "loc_code": _code_expr(frame.get_column("location"), location_code),
    }
