"""A plain vectorised pandas implementation of a documented subset of the registry's features.

The reference for ``bench_features.py``: the obvious way to write point-in-time features in pandas —
for each distinct cutoff instant, keep the events with ``ts < T`` of the users due at T, then one
``groupby`` per window. It computes, with the registry's names (so the benchmark can check that both
implementations agree):

* ``activity__events_<win>``, ``activity__songs_<win>``, ``activity__listen_hours_<win>``
* ``engagement__thumbs_up_<win>``, ``engagement__thumbs_down_<win>``, ``engagement__playlist_adds_<win>``,
  ``engagement__friend_adds_<win>``, ``subscription__adverts_<win>``, ``friction__errors_<win>``,
  ``friction__help_<win>``
* ``activity__sessions_all`` (distinct sessions) and ``recency__days_since_last_event``

for ``<win>`` in ``all`` and each window in days (10 × (1 + windows) + 2 columns: 42 for 7/14/28 days).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DAY_MS = 86_400_000
PAGE_FEATURES: dict[str, str] = {
    "Thumbs Up": "engagement__thumbs_up",
    "Thumbs Down": "engagement__thumbs_down",
    "Add to Playlist": "engagement__playlist_adds",
    "Add Friend": "engagement__friend_adds",
    "Roll Advert": "subscription__adverts",
    "Error": "friction__errors",
    "Help": "friction__help",
}


def subset_names(windows_days: list[int]) -> list[str]:
    """Column names the reference computes (a subset of the feature registry)."""
    wins = ["all", *[f"{w}d" for w in windows_days]]
    stems = ["activity__events", "activity__songs", "activity__listen_hours", *PAGE_FEATURES.values()]
    return [f"{s}_{w}" for s in stems for w in wins] + [
        "activity__sessions_all",
        "recency__days_since_last_event",
    ]


def pandas_features(events: pd.DataFrame, cutoffs: pd.DataFrame, windows_days: list[int]) -> pd.DataFrame:
    """Features of :func:`subset_names` for each (user_id, cutoff_ms) row of ``cutoffs``.

    ``events``: user_id (category), ts_ms (int64), session_id, page (category), length. Output: the
    cutoffs' rows (same order) with the subset columns (float64).
    """
    out_parts: list[pd.DataFrame] = []
    ts = events["ts_ms"].to_numpy()
    for cutoff_ms, due in cutoffs.groupby("cutoff_ms", sort=True):
        keep = (ts < cutoff_ms) & events["user_id"].isin(due["user_id"]).to_numpy()
        before = events.loc[keep]
        cols: dict[str, pd.Series] = {}
        for w in ["all", *windows_days]:
            win = (
                before
                if w == "all"
                else before.loc[before["ts_ms"].to_numpy() >= cutoff_ms - int(w) * DAY_MS]
            )
            tag = "all" if w == "all" else f"{w}d"
            by_user = win.groupby("user_id", observed=True)
            cols[f"activity__events_{tag}"] = by_user.size()
            pages = win.groupby(["user_id", "page"], observed=True).size().unstack(fill_value=0)
            songs = pages["NextSong"] if "NextSong" in pages else pd.Series(dtype=float)
            cols[f"activity__songs_{tag}"] = songs
            listen = win["length"].where(win["page"] == "NextSong", 0.0)
            cols[f"activity__listen_hours_{tag}"] = (
                listen.groupby(win["user_id"], observed=True).sum() / 3600.0
            )
            for page, name in PAGE_FEATURES.items():
                cols[f"{name}_{tag}"] = pages[page] if page in pages else pd.Series(dtype=float)
        by_user = before.groupby("user_id", observed=True)
        cols["activity__sessions_all"] = by_user["session_id"].nunique()
        cols["recency__days_since_last_event"] = (cutoff_ms - by_user["ts_ms"].max()) / DAY_MS
        frame = pd.DataFrame(cols).reindex(due["user_id"].astype(str).unique())
        counts = [c for c in frame.columns if c != "recency__days_since_last_event"]
        frame[counts] = frame[counts].fillna(0.0)
        frame.index.name = "user_id"
        frame = frame.reset_index()
        frame["cutoff_ms"] = cutoff_ms
        out_parts.append(frame)
    table = pd.concat(out_parts, ignore_index=True)
    table["user_id"] = table["user_id"].astype(str)
    keys = cutoffs.assign(user_id=cutoffs["user_id"].astype(str))
    merged = keys.merge(table, on=["user_id", "cutoff_ms"], how="left")
    return merged[["user_id", "cutoff_ms", *subset_names(windows_days)]].astype(
        {c: np.float64 for c in subset_names(windows_days)}
    )
