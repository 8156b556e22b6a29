"""Synthetic Sparkify-shaped events for the feature tests (helper module) and checks of the helper itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from churnflow.data.schema import EVENT_COLUMNS, EVENT_DTYPES, PAGES

START = datetime(2018, 10, 1, tzinfo=UTC)
DAY_MS = 86_400_000
USER_AGENTS = (
    '"Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) '
    'Chrome/36.0.1985.143 Safari/537.36"',
    '"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.77.4 (KHTML, like Gecko) '
    'Version/7.0.5 Safari/537.77.4"',
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:31.0) Gecko/20100101 Firefox/31.0",
    '"Mozilla/5.0 (iPhone; CPU iPhone OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2 (KHTML, like Gecko) '
    'Version/7.0 Mobile/11D257 Safari/9537.53"',
    "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.1; WOW64; Trident/6.0)",
)
LOCATIONS = (
    "Boston-Cambridge-Newton, MA-NH",
    "Los Angeles-Long Beach-Anaheim, CA",
    "Houston, TX",
    "Chicago, IL-IN",
)
PAGE_NAMES = tuple(PAGES)
#: Sparkify-like page mix: mostly songs.
PAGE_WEIGHTS = np.array([80.0 if p == "NextSong" else 1.0 for p in PAGE_NAMES])

#: The events table's dtypes with strings in place of categoricals/enums (the engine accepts both).
EVENT_SCHEMA: dict[str, pl.DataType] = {
    c: pl.String() if isinstance(t, pl.Categorical | pl.Enum) else t for c, t in EVENT_DTYPES.items()
}


def make_events(n_users: int = 5, events_per_user: int = 300, days: int = 60, seed: int = 0) -> pl.DataFrame:
    """Events with ``EVENT_COLUMNS`` and the loader's types (strings for categoricals), sorted by user, ts.

    Users have sessions of consecutive events (gaps of seconds to minutes), sessions spread over ``days``.
    """
    rng = np.random.default_rng(seed)
    rows: dict[str, list[object]] = {c: [] for c in EVENT_COLUMNS}
    t0 = int(START.timestamp() * 1000)
    line = 0
    session_id = 0
    for u in range(n_users):
        user = f"u{u:03d}"
        n_left = events_per_user
        reg = t0 - int(rng.integers(1, 90)) * DAY_MS
        level = "paid" if rng.random() < 0.4 else "free"
        ua = USER_AGENTS[u % len(USER_AGENTS)]
        loc = LOCATIONS[u % len(LOCATIONS)]
        gender = "F" if u % 2 else "M"
        while n_left > 0:
            session_id += 1
            size = int(min(n_left, rng.integers(1, 40)))
            ts = t0 + int(rng.integers(0, days * DAY_MS))
            for item in range(size):
                page = PAGE_NAMES[rng.choice(len(PAGE_NAMES), p=PAGE_WEIGHTS / PAGE_WEIGHTS.sum())]
                if page == "Submit Upgrade":
                    level = "paid"
                elif page == "Submit Downgrade":
                    level = "free"
                song = page == "NextSong"
                artist_i = int(rng.zipf(1.5)) % 40
                rows["user_id"].append(user)
                rows["ts"].append(ts)
                rows["session_id"].append(session_id)
                rows["item_in_session"].append(item)
                rows["page"].append(page)
                rows["auth"].append("Logged In")
                rows["method"].append(PAGES[page][0])
                rows["status"].append(PAGES[page][1])
                rows["level"].append(level)
                rows["registration"].append(reg)
                rows["gender"].append(gender)
                rows["location"].append(loc)
                rows["user_agent"].append(ua)
                rows["first_name"].append("Ann")
                rows["last_name"].append("Lee")
                rows["artist"].append(f"Artist {artist_i}" if song else None)
                rows["song"].append(f"Song {artist_i}-{int(rng.integers(0, 5))}" if song else None)
                rows["length"].append(float(rng.uniform(120, 400)) if song else None)
                rows["source_file"].append("synthetic.json")
                rows["source_line"].append(line)
                line += 1
                ts += int(rng.integers(1_000, 400_000))
            n_left -= size
    frame = pl.DataFrame(rows, schema={c: EVENT_SCHEMA[c] for c in EVENT_COLUMNS})
    return frame.sort("user_id", "ts")


def weekly_cutoffs(events: pl.DataFrame, first_day: int = 7, every: int = 7, count: int = 8) -> pl.DataFrame:
    """(user_id, cutoff) for every user at day-aligned cutoffs from ``START``, plus odd mid-day instants."""
    users = events["user_id"].unique().sort().to_list()
    cuts = [START + timedelta(days=first_day + every * k) for k in range(count)]
    cuts += [START + timedelta(days=20, hours=13, minutes=7, seconds=3, milliseconds=17)]
    return pl.DataFrame(
        {"user_id": [u for u in users for _ in cuts], "cutoff": [c for _ in users for c in cuts]},
        schema={"user_id": pl.String, "cutoff": pl.Datetime("ms", "UTC")},
    )


def test_make_events_has_the_events_contract() -> None:
    ev = make_events(n_users=3, events_per_user=50)
    assert tuple(ev.columns) == EVENT_COLUMNS
    assert ev.height == 150
    assert ev.filter(pl.col("page") == "NextSong")["artist"].null_count() == 0
    assert (
        ev.filter(pl.col("page") != "NextSong")["artist"].null_count()
        == ev.filter(pl.col("page") != "NextSong").height
    )
