"""Retention views for the churn-definition notebook: survival from registration, and how the label moves
with the inactivity threshold. No I/O: events in, frames out.

* :func:`retention_table` — one row per user, for Kaplan–Meier curves: a user is followed from their
  first event in the export until the first churn the project's label rules date
  (:func:`churnflow.labels.churn_events`: cancellation, inactivity, downgrade as configured) or,
  censored, the export's last event. Cohorts are registration periods (users who registered inside the
  export start at sign-up; earlier customers start when the export does), levels the level at the first
  event. (Survival since *registration* would need delayed entry, and with the few early entries of a
  short export its estimate collapses; time since first seen is stable and reads the same way.)
* :func:`inactivity_sensitivity` — the label table rebuilt with other ``inactivity_days`` (on a seeded
  sample of users, so the report stays quick on large exports): usable cutoffs, rows, churn rate and the
  share of churn that is inactivity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import polars as pl

from churnflow.config.labels import LabelsConfig
from churnflow.labels import build_labels, churn_events

_DAY_MS = 86_400_000


def retention_table(events: pl.DataFrame, cfg: LabelsConfig) -> pl.DataFrame:
    """``user_id``, ``level`` (at the first event), ``cohort``, ``duration`` (days from the first event to
    the first churn or the export's end) and ``churned`` (bool) — one row per logged-in user."""
    ev = events.filter(pl.col("user_id").is_not_null() & (pl.col("user_id") != ""))
    day0 = ev["ts"].min()
    end = ev["ts"].max()
    users = (
        ev.sort(["user_id", "ts"])
        .group_by("user_id", maintain_order=True)
        .agg(
            first=pl.col("ts").first(),
            registration=pl.col("registration").min(),
            level=pl.col("level").cast(pl.String).first(),
        )
    )
    first_churn = churn_events(ev, cfg).group_by("user_id").agg(churn_ts=pl.col("churn_ts").min())
    table = users.join(first_churn, on="user_id", how="left")
    start = pl.coalesce(pl.min_horizontal("registration", "first"), pl.col("first"))
    stop = pl.coalesce(pl.col("churn_ts"), pl.lit(end, dtype=ev.schema["ts"]))
    cohort = (
        pl.when(start < pl.lit(day0, dtype=ev.schema["ts"]))
        .then(pl.lit("registered before the export"))
        .otherwise(pl.lit("registered ") + start.dt.strftime("%Y-%m"))
    )
    days = lambda e: e.dt.total_milliseconds() / _DAY_MS  # noqa: E731
    out = table.select(
        "user_id",
        "level",
        cohort.alias("cohort"),
        # a churn on the first day still needs a positive time at risk
        days(stop - pl.col("first")).clip(lower_bound=1e-3).alias("duration"),
        pl.col("churn_ts").is_not_null().alias("churned"),
    )
    return out.sort("user_id")


def inactivity_sensitivity(
    events: pl.DataFrame, cfg: LabelsConfig, thresholds: Sequence[int], max_users: int = 600, seed: int = 0
) -> pl.DataFrame:
    """The label table under each ``inactivity_days`` in ``thresholds`` (other settings as ``cfg``), on up
    to ``max_users`` users drawn with ``seed`` (the ``users`` column says how many)."""
    users = events["user_id"].drop_nulls().unique().sort()
    if users.len() > max_users:
        users = users.sample(n=max_users, seed=seed).sort()
        events = events.filter(pl.col("user_id").is_in(users.implode()))
    rows = []
    for days in thresholds:
        labels = build_labels(events, replace(cfg, inactivity_days=int(days))).labels
        positives = labels.filter(pl.col("label") == 1)
        rows.append(
            {
                "inactivity_days": int(days),
                "users": users.len(),
                "label_window_days": cfg.horizon_days + int(days),
                "usable_cutoffs": labels["cutoff"].n_unique(),
                "rows": labels.height,
                "churn_rate": float(labels["label"].mean()) if labels.height else None,
                "inactive_share_of_churn": float((positives["churn_kind"] == "inactive").mean())
                if positives.height
                else None,
                "current": int(days) == cfg.inactivity_days,
            }
        )
    return pl.DataFrame(rows)
