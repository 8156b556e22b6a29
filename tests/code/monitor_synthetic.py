"""Synthetic training-table-like rows for the monitor tests: users at several cutoffs, clustered.

Each user has a trait (engagement) drawn once; every cutoff row adds noise, so a user's rows are
correlated (as in the real table, where the same user appears at every cutoff). Columns: a continuous
feature, a count, a flag constant per user, a nullable "days since" feature, and a string column.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

DAY0 = datetime(2024, 1, 1, tzinfo=UTC)
OFFSETS = (7, 10, 13, 16)
FEATURES = [
    "activity__listen_hours_7d",
    "activity__songs_7d",
    "content__ua_mobile",
    "recency__days_since_last_error",
    "profile__plan",
]


def clustered_rows(
    n_users: int, seed: int, shift: float = 0.0, flag_share: float = 0.2, prefix: str = "u"
) -> pl.DataFrame:
    """``n_users`` users × ``OFFSETS`` cutoffs; ``shift`` moves the continuous and count features."""
    rng = np.random.default_rng(seed)
    trait = rng.normal(size=n_users)
    flag = (rng.random(n_users) < flag_share).astype(float)
    plan = rng.choice(["free", "paid"], n_users, p=[0.6, 0.4])
    rows = []
    for offset in OFFSETS:
        hours = np.exp(0.5 * trait + 0.4 * rng.normal(size=n_users) + 1.0 + shift)
        songs = rng.poisson(np.exp(2.5 + 0.6 * trait + shift))
        error_days = rng.exponential(10.0, n_users)
        error_days[rng.random(n_users) < 0.3] = np.nan
        rows.append(
            pl.DataFrame(
                {
                    "user_id": [f"{prefix}{i:05d}" for i in range(n_users)],
                    "cutoff": [DAY0 + timedelta(days=offset)] * n_users,
                    "activity__listen_hours_7d": hours,
                    "activity__songs_7d": songs.astype(float),
                    "content__ua_mobile": flag,
                    "recency__days_since_last_error": error_days.round(1),
                    "profile__plan": plan,
                }
            )
        )
    frame = pl.concat(rows).with_columns(pl.col("cutoff").cast(pl.Datetime("ms", "UTC")))
    return frame.sort(["cutoff", "user_id"])


def score(frame: pl.DataFrame) -> np.ndarray:
    """A fixed scoring function: fewer songs → more churn (a stand-in for a calibrated model)."""
    z = -0.08 * frame["activity__songs_7d"].to_numpy() + 0.3
    return 1.0 / (1.0 + np.exp(-z))


class FixedModel:
    """Scores with :func:`score` (``predict_proba`` as the monitor's protocol asks)."""

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        return score(frame)


def with_labels(frame: pl.DataFrame, seed: int, p: np.ndarray | None = None) -> pl.DataFrame:
    """Labels drawn Bernoulli(score) (or Bernoulli(``p``): a concept drift when ``p`` differs)."""
    rng = np.random.default_rng(seed)
    probs = score(frame) if p is None else p
    return frame.with_columns(pl.Series("label", (rng.random(frame.height) < probs).astype(np.int8)))


def current(
    frame: pl.DataFrame, labelled: bool = True, seed: int = 0, p: np.ndarray | None = None
) -> pl.DataFrame:
    """Rows shaped as ``churnflow.monitoring.windows.scored_rows`` returns them."""
    out = (
        with_labels(frame, seed, p)
        if labelled
        else frame.with_columns(pl.lit(None, dtype=pl.Int8).alias("label"))
    )
    return out.with_columns(
        offset=(pl.col("cutoff") - pl.lit(DAY0, dtype=pl.Datetime("ms", "UTC")))
        .dt.total_days()
        .cast(pl.Int64),
        in_reference=pl.lit(True),
        churn_probability=pl.Series(score(out)),
    )
