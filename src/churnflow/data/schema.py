"""The Sparkify event schema: raw JSON keys, page vocabulary and the normalised events table.

Shared by the simulator (which must write exactly this) and the loader (which validates against it).
"""

from __future__ import annotations

from typing import Final

#: The 18 raw keys, in Sparkify's (alphabetical) order.
RAW_KEYS: Final[tuple[str, ...]] = (
    "artist",
    "auth",
    "firstName",
    "gender",
    "itemInSession",
    "lastName",
    "length",
    "level",
    "location",
    "method",
    "page",
    "registration",
    "sessionId",
    "song",
    "status",
    "ts",
    "userAgent",
    "userId",
)

#: Keys a line cannot be loaded without.
REQUIRED_RAW_KEYS: Final[tuple[str, ...]] = ("ts", "userId", "sessionId", "page")

#: raw key → normalised column name in ``events.parquet``.
RAW_TO_COLUMN: Final[dict[str, str]] = {
    "artist": "artist",
    "auth": "auth",
    "firstName": "first_name",
    "gender": "gender",
    "itemInSession": "item_in_session",
    "lastName": "last_name",
    "length": "length",
    "level": "level",
    "location": "location",
    "method": "method",
    "page": "page",
    "registration": "registration",
    "sessionId": "session_id",
    "song": "song",
    "status": "status",
    "ts": "ts",
    "userAgent": "user_agent",
    "userId": "user_id",
}

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

CANCEL_CONFIRMATION_PAGE: Final[str] = "Cancellation Confirmation"
SUBMIT_DOWNGRADE_PAGE: Final[str] = "Submit Downgrade"

#: Column order of the normalised events table (``artifacts/events.parquet``).
EVENT_COLUMNS: Final[tuple[str, ...]] = (
    "user_id",
    "ts",
    "session_id",
    "item_in_session",
    "page",
    "auth",
    "method",
    "status",
    "level",
    "registration",
    "gender",
    "location",
    "user_agent",
    "first_name",
    "last_name",
    "artist",
    "song",
    "length",
    "source_file",
    "source_line",
)
