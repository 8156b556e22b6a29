"""Calibration: simulated marginals against the published Sparkify figures.

``PUBLISHED_MINI`` holds the figures of ``mini_sparkify_event_data.json`` from
``../shared/reference/sparkify_published_stats.md`` (except ``paid_event_share``, see its note). For the
larger presets only the event count is published; the other targets are mini's per-user figures scaled by
the preset's user count (stated as such in the table).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import polars as pl

from churnflow.data.schema import PAGES

#: logged-in page counts of the mini file (auth Logged In, plus Cancelled for the confirmation)
PUBLISHED_MINI_PAGES: Final[dict[str, int]] = {
    "NextSong": 228_108,
    "Thumbs Up": 12_551,
    "Home": 10_082,
    "Add to Playlist": 6_526,
    "Add Friend": 4_277,
    "Roll Advert": 3_933,
    "Logout": 3_226,
    "Thumbs Down": 2_546,
    "Downgrade": 2_055,
    "Settings": 1_514,
    "Help": 1_454,
    "Upgrade": 499,
    "About": 495,
    "Save Settings": 310,
    "Error": 252,
    "Submit Upgrade": 159,
    "Submit Downgrade": 63,
    "Cancel": 52,
    "Cancellation Confirmation": 52,
}

PUBLISHED_MINI: Final[dict[str, float]] = {
    "events": 286_500,
    "users": 225,
    "churners": 52,
    "anonymous_events": 8_346,
    "sessions": 2_354,
    "events_per_user": 278_154 / 225,
    "songs_per_user": 228_108 / 225,
    "sessions_per_user": 2_354 / 225,
    "advert_free_share": 3_687 / 3_933,
    # not in the shared reference: level counts free 58,338 / paid 228,162 as printed by public analyses
    "paid_event_share": 228_162 / 286_500,
}

#: published event counts of the larger exports (the other figures scale with users)
PUBLISHED_EVENTS: Final[dict[str, float]] = {"mini": 286_500, "medium": 543_705, "full": 26_259_199}

#: how far mini may be from each published figure
TOLERANCE: Final[float] = 0.15


@dataclass(frozen=True)
class CalibrationRow:
    """One marginal: simulated value, target, ratio and whether it lies within the tolerance."""

    name: str
    simulated: float
    target: float
    ratio: float
    within: bool
    note: str = ""


def marginals(events: pl.DataFrame | pl.LazyFrame) -> dict[str, float]:
    """Marginals of a raw-key events frame (columns as in RAW_KEYS, as read from the JSON lines).

    Works on a LazyFrame too (e.g. ``pl.scan_ndjson`` of the 12 GB-sized ``full`` output): two group-bys
    (per session, per page/level/auth) are collected with the streaming engine.
    """
    lf = events.lazy()
    per_session = lf.group_by("userId", "sessionId").agg(pl.len().alias("n"))
    per_page = lf.group_by("page", "level", "auth").agg(pl.len().alias("n"))
    sess, pages_lv = pl.collect_all([per_session, per_page], engine="streaming")
    logged_s = sess.filter(pl.col("userId") != "")
    n_users = logged_s["userId"].n_unique()
    logged_p = pages_lv.filter(~pl.col("auth").is_in(["Logged Out", "Guest"]))
    pages = dict(logged_p.group_by("page").agg(pl.col("n").sum()).iter_rows())
    n_events = int(pages_lv["n"].sum())
    n_logged = int(logged_p["n"].sum())
    ads = logged_p.filter(pl.col("page") == "Roll Advert")
    ads_free = int(ads.filter(pl.col("level") == "free")["n"].sum())
    paid = int(pages_lv.filter(pl.col("level") == "paid")["n"].sum())
    out: dict[str, float] = {
        "events": float(n_events),
        "users": float(n_users),
        "churners": float(pages.get("Cancellation Confirmation", 0)),
        "anonymous_events": float(n_events - n_logged),
        "sessions": float(sess["sessionId"].n_unique()),
        "events_per_user": n_logged / max(n_users, 1),
        "songs_per_user": pages.get("NextSong", 0) / max(n_users, 1),
        "sessions_per_user": logged_s.height / max(n_users, 1),
        "advert_free_share": ads_free / max(int(ads["n"].sum()), 1),
        "paid_event_share": paid / max(n_events, 1),
    }
    for page in PAGES:
        if page in PUBLISHED_MINI_PAGES:
            out[f"page:{page}"] = float(pages.get(page, 0))
    return out


def targets_for(preset: str, n_users: int) -> tuple[dict[str, float], str]:
    """Targets for a preset: mini's figures, or mini's scaled by users (events: published when known)."""
    targets = dict(PUBLISHED_MINI)
    targets.update({f"page:{k}": float(v) for k, v in PUBLISHED_MINI_PAGES.items()})
    if preset == "mini":
        return targets, "published (mini_sparkify_event_data.json)"
    scale = n_users / PUBLISHED_MINI["users"]
    for key in (
        "events",
        "users",
        "churners",
        "anonymous_events",
        "sessions",
        *[k for k in targets if k.startswith("page:")],
    ):
        targets[key] = targets[key] * scale
    note = f"mini's figures × {scale:.2f} (users)"
    if preset in PUBLISHED_EVENTS:
        targets["events"] = PUBLISHED_EVENTS[preset]
        note += f"; events: published {preset} count"
    return targets, note


def calibration_table(
    events: pl.DataFrame | pl.LazyFrame, preset: str, n_users: int, tolerance: float = TOLERANCE
) -> list[CalibrationRow]:
    """Compare the marginals of ``events`` with the preset's targets; one row per marginal."""
    sim = marginals(events)
    targets, note = targets_for(preset, n_users)
    rows = []
    for name, target in targets.items():
        value = sim[name]
        ratio = value / target if target else float("nan")
        rows.append(CalibrationRow(name, value, target, ratio, abs(ratio - 1.0) <= tolerance, note))
    return rows


def format_table(rows: list[CalibrationRow]) -> str:
    """A Markdown table of calibration rows."""
    lines = ["| marginal | simulated | target | ratio | within ±15% |", "|---|---:|---:|---:|:---:|"]
    for r in rows:
        lines.append(
            f"| {r.name} | {r.simulated:,.3f} | {r.target:,.3f} | {r.ratio:.3f} "
            f"| {'yes' if r.within else 'NO'} |"
        )
    return "\n".join(lines)


def read_events(path: str) -> pl.DataFrame:
    """Read simulated JSON lines (plain or gzip) into a raw-key frame (for calibration and tests)."""
    import gzip
    import io

    if str(path).endswith(".gz"):
        with gzip.open(path, "rb") as fh:
            return pl.read_ndjson(io.BytesIO(fh.read()), infer_schema_length=None)
    return pl.read_ndjson(path, infer_schema_length=None)


# --- behaviour as rates (any window length) ---------------------------------------------------------------

#: the published mini file's figures as rates: per distinct user and day of its 63-day window
PUBLISHED_MINI_DAYS: Final[int] = 63
_LOGGED_IN_EVENTS: Final[int] = 278_154


def published_rates() -> dict[str, float]:
    """The published mini figures as rates (per distinct user per window day; page shares; churn/month)."""
    users, days = PUBLISHED_MINI["users"], PUBLISHED_MINI_DAYS
    out = {
        "events_per_user_day": _LOGGED_IN_EVENTS / users / days,
        "songs_per_user_day": PUBLISHED_MINI_PAGES["NextSong"] / users / days,
        "sessions_per_user_day": PUBLISHED_MINI["sessions"] / users / days,
        "paid_event_share": PUBLISHED_MINI["paid_event_share"],
        "advert_free_share": PUBLISHED_MINI["advert_free_share"],
        "cancellations_per_user_month": PUBLISHED_MINI["churners"] / users * 30.0 / days,
    }
    for page, n in PUBLISHED_MINI_PAGES.items():
        out[f"share:{page}"] = n / _LOGGED_IN_EVENTS
    return out


def behaviour_rates(
    events: pl.DataFrame | pl.LazyFrame, truth: pl.DataFrame, n_days: int
) -> dict[str, float]:
    """Rates of a simulated world that do not depend on its size or length.

    Per distinct user per window day (the published file's definition, comparable only between windows of
    the same length and inflow) and per *customer-day* (a day on which a user has registered and not yet
    decided to leave, from the truth sidecar): events, songs and sessions; page shares of logged-in events;
    paid share of all events; share of adverts heard by free users; churn per customer-month (all decisions
    to leave, and observed cancellations); customers at the start, middle and end of the window.
    """
    m = marginals(events)
    users = m["users"]
    reg = truth["reg_day"].to_numpy()
    dec = truth["decision_day"].fill_null(float("nan")).to_numpy()
    gone = np.where(np.isnan(dec), np.inf, dec)
    lo, hi = np.clip(reg, 0.0, n_days), np.clip(gone, 0.0, n_days)
    customer_days = float(np.maximum(hi - lo, 0.0).sum())
    logged = m["events"] - m["anonymous_events"]
    decisions = float((gone < n_days).sum())

    def customers(day: float) -> float:
        return float(((reg <= day) & (gone > day)).sum())

    out = {
        "events_per_user_day": logged / users / n_days,
        "songs_per_user_day": m["songs_per_user"] / n_days,
        "sessions_per_user_day": m["sessions_per_user"] / n_days,
        "events_per_customer_day": logged / customer_days,
        "songs_per_customer_day": m["page:NextSong"] / customer_days,
        "sessions_per_customer_day": m["sessions_per_user"] * users / customer_days,
        "paid_event_share": m["paid_event_share"],
        "advert_free_share": m["advert_free_share"],
        "cancellations_per_user_month": m["churners"] / users * 30.0 / n_days,
        "cancellations_per_customer_month": m["churners"] / customer_days * 30.0,
        "churn_per_customer_month": decisions / customer_days * 30.0,
        "customers_start": customers(0.0),
        "customers_middle": customers(n_days / 2),
        "customers_end": customers(n_days - 1e-9),
        "customer_days": customer_days,
    }
    for page in PUBLISHED_MINI_PAGES:
        out[f"share:{page}"] = m[f"page:{page}"] / logged
    return out


def format_rates(columns: dict[str, dict[str, float]], reference: dict[str, float]) -> str:
    """A Markdown table of rates: one column per world (``columns``), the published value beside."""
    names = list(next(iter(columns.values())))
    head = "| rate | published mini | " + " | ".join(columns) + " |"
    lines = [head, "|---|---:|" + "---:|" * len(columns)]
    for name in names:
        ref = reference.get(name)
        cells = []
        for values in columns.values():
            v = values[name]
            ratio = f" ({v / ref:.2f})" if ref else ""
            cells.append(f"{v:,.4g}{ratio}")
        lines.append(f"| {name} | {'' if ref is None else f'{ref:,.4g}'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
