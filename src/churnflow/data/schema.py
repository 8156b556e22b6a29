"""The Sparkify event schema, written once: raw keys, page vocabulary and the normalised events table.

Shared by the simulator (which must write exactly this), the loader (which validates against it) and
serving (which builds its request types from it). Everything about a raw key — its JSON type and its
events-table column — is in ``RAW_SCHEMA``; ``RAW_KEYS``, ``RAW_TYPES``, ``RAW_DTYPES`` and
``RAW_TO_COLUMN`` are derived from it. The events table is ``EVENT_DTYPES`` (column → dtype, in order).
"""

from __future__ import annotations

from typing import Final, NamedTuple

import polars as pl


class RawKey(NamedTuple):
    """One raw JSON key: the JSON type of its value (null is always allowed) and its events-table column."""

    type: type
    column: str


#: The 18 raw keys, in Sparkify's (alphabetical) order.
RAW_SCHEMA: Final[dict[str, RawKey]] = {
    "artist": RawKey(str, "artist"),
    "auth": RawKey(str, "auth"),
    "firstName": RawKey(str, "first_name"),
    "gender": RawKey(str, "gender"),
    "itemInSession": RawKey(int, "item_in_session"),
    "lastName": RawKey(str, "last_name"),
    "length": RawKey(float, "length"),
    "level": RawKey(str, "level"),
    "location": RawKey(str, "location"),
    "method": RawKey(str, "method"),
    "page": RawKey(str, "page"),
    "registration": RawKey(float, "registration"),
    "sessionId": RawKey(int, "session_id"),
    "song": RawKey(str, "song"),
    "status": RawKey(int, "status"),
    "ts": RawKey(int, "ts"),
    "userAgent": RawKey(str, "user_agent"),
    "userId": RawKey(str, "user_id"),
}
RAW_KEYS: Final[tuple[str, ...]] = tuple(RAW_SCHEMA)
#: raw key → JSON type of its value (``str``, ``int`` or ``float``).
RAW_TYPES: Final[dict[str, type]] = {key: spec.type for key, spec in RAW_SCHEMA.items()}
#: raw key → normalised column name in ``events.parquet``.
RAW_TO_COLUMN: Final[dict[str, str]] = {key: spec.column for key, spec in RAW_SCHEMA.items()}
COLUMN_TO_RAW: Final[dict[str, str]] = {column: key for key, column in RAW_TO_COLUMN.items()}
#: Polars types of the raw keys as decoded (integers stay Int64 until the events table narrows them).
RAW_DTYPES: Final[dict[str, pl.DataType]] = {
    key: {str: pl.String(), int: pl.Int64(), float: pl.Float64()}[spec.type]
    for key, spec in RAW_SCHEMA.items()
}

#: Keys a line cannot be loaded without.
REQUIRED_RAW_KEYS: Final[tuple[str, ...]] = ("ts", "userId", "sessionId", "page")

#: The 22 Sparkify pages with their (method, status).
PAGES: Final[dict[str, tuple[str, int]]] = {
    "NextSong": ("PUT", 200),
    "Thumbs Up": ("PUT", 307),
    "Thumbs Down": ("PUT", 307),
    "Home": ("GET", 200),
    "Add to Playlist": ("PUT", 200),
    "Add Friend": ("PUT", 307),
    "Roll Advert": ("GET", 200),
    "Logout": ("PUT", 307),
    "Downgrade": ("GET", 200),
    "Settings": ("GET", 200),
    "Help": ("GET", 200),
    "Upgrade": ("GET", 200),
    "About": ("GET", 200),
    "Save Settings": ("PUT", 307),
    "Error": ("GET", 404),
    "Submit Upgrade": ("PUT", 307),
    "Submit Downgrade": ("PUT", 307),
    "Cancel": ("PUT", 307),
    "Cancellation Confirmation": ("GET", 200),
    "Login": ("PUT", 307),
    "Register": ("GET", 200),
    "Submit Registration": ("PUT", 307),
}

#: Pages seen with an empty userId (auth Logged Out / Guest).
ANONYMOUS_PAGES: Final[frozenset[str]] = frozenset(
    {"Login", "Home", "About", "Help", "Error", "Register", "Submit Registration"}
)

AUTH_VALUES: Final[tuple[str, ...]] = ("Logged In", "Logged Out", "Guest", "Cancelled")
LEVEL_VALUES: Final[tuple[str, ...]] = ("free", "paid")
METHOD_VALUES: Final[tuple[str, ...]] = ("GET", "PUT")
STATUS_VALUES: Final[tuple[int, ...]] = (200, 307, 404)
GENDER_VALUES: Final[tuple[str, ...]] = ("M", "F")
#: raw key → its allowed values (any other non-null value is invalid), in the loader's check order.
RAW_VOCABULARIES: Final[dict[str, tuple[str, ...] | tuple[int, ...]]] = {
    "auth": AUTH_VALUES,
    "level": LEVEL_VALUES,
    "method": METHOD_VALUES,
    "status": STATUS_VALUES,
    "gender": GENDER_VALUES,
}

CANCEL_CONFIRMATION_PAGE: Final[str] = "Cancellation Confirmation"
SUBMIT_DOWNGRADE_PAGE: Final[str] = "Submit Downgrade"

# ---------------------------------------------------------------------------------- the events table
TZ: Final[str] = "UTC"
TS_DTYPE: Final[pl.Datetime] = pl.Datetime("ms", TZ)
AUTH_DTYPE: Final[pl.Enum] = pl.Enum(list(AUTH_VALUES))
LEVEL_DTYPE: Final[pl.Enum] = pl.Enum(list(LEVEL_VALUES))
METHOD_DTYPE: Final[pl.Enum] = pl.Enum(list(METHOD_VALUES))

#: The events table (``artifacts/events.parquet``): column → dtype, in column order. Every raw key's
#: column, then the source position (``source_file``, ``source_line``) that traces an event to its line.
EVENT_DTYPES: Final[dict[str, pl.DataType]] = {
    "user_id": pl.String(),
    "ts": TS_DTYPE,
    "session_id": pl.Int64(),
    "item_in_session": pl.Int32(),
    "page": pl.Categorical(),
    "auth": AUTH_DTYPE,
    "method": METHOD_DTYPE,
    "status": pl.Int16(),
    "level": LEVEL_DTYPE,
    "registration": TS_DTYPE,
    "gender": pl.String(),
    "location": pl.String(),
    "user_agent": pl.String(),
    "first_name": pl.String(),
    "last_name": pl.String(),
    "artist": pl.String(),
    "song": pl.String(),
    "length": pl.Float64(),
    "source_file": pl.String(),
    "source_line": pl.Int64(),
}
#: Column order of the events table.
EVENT_COLUMNS: Final[tuple[str, ...]] = tuple(EVENT_DTYPES)
SOURCE_COLUMNS: Final[tuple[str, ...]] = ("source_file", "source_line")
#: The stable total order of the events table (source position makes it total).
SORT_KEYS: Final[tuple[str, ...]] = ("user_id", "ts", "session_id", "item_in_session", *SOURCE_COLUMNS)
#: Columns that make two events "exact duplicates" (everything but the source position).
DEDUP_KEYS: Final[tuple[str, ...]] = tuple(c for c in EVENT_COLUMNS if c not in SOURCE_COLUMNS)
