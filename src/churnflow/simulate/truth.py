"""Ground truth: the per-user sidecar, and the old realised-hazard churn probability computed from it.

Sidecar columns (one row per simulated user):

* observed churn and activity: ``user_id``, ``registration``, ``paid_at_start`` (paid at sign-up: a
  trait), ``engagement``,
  ``churn_kind`` ("cancel" | "silent" | null), ``churn_ts`` (cancel: the Cancellation Confirmation's ts;
  silent: the moment the user was gone — the decision, or the end of the session they were in; after
  their last event), ``first_event_ts``, ``last_event_ts``, ``n_events``;
* the latent daily state: ``hazard_start`` (start of day 0), ``hazard`` (daily churn probability) and
  ``satisfaction`` (list over ``hazard_days`` days), ``sat_trait`` (z of the satisfaction mean),
  ``paid_at_window_start`` (the level at the window's start, or at registration);
* what the Monte-Carlo oracle needs (``churnflow.simulate.oracle``), times in days from ``hazard_start``:
  ``reg_day``, ``first_session_day``, ``decision_day``/``decision_kind`` (the decision to leave inside the
  window, observed or not), per session (lists, in time order) ``session_start_day``, ``session_end_day``
  (the engine's end, after the last event), ``session_last_ms`` (its last logged-in event),
  ``session_kind`` (0 plain, 1 upgrade, 2 downgrade, 3 cancel), ``session_paid_after``,
  ``session_gap_mean`` (mean of the gamma gap drawn after it); per UTC day with activity ``active_day``
  and ``active_day_last_ms`` (the day's last logged-in event); and the world's ``preset``, ``scenario``,
  ``change_day``, ``seed``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

import numpy as np
import polars as pl

from churnflow.simulate.presets import DAY_MS

TRUTH_DIR: Final[str] = "_truth"
TRUTH_FILE: Final[str] = "ground_truth.parquet"
TRUTH_COLUMNS: Final[tuple[str, ...]] = (
    "user_id",
    "registration",
    "paid_at_start",
    "engagement",
    "churn_kind",
    "churn_ts",
    "first_event_ts",
    "last_event_ts",
    "n_events",
    "hazard_start",
    "hazard",
    "satisfaction",
)
#: the latent state the Monte-Carlo oracle reads on top of ``TRUTH_COLUMNS`` (per-user lists and values)
ORACLE_STATE_COLUMNS: Final[tuple[str, ...]] = (
    "sat_trait",
    "paid_at_window_start",
    "reg_day",
    "first_session_day",
    "decision_day",
    "decision_kind",
    "session_start_day",
    "session_end_day",
    "session_last_ms",
    "session_kind",
    "session_paid_after",
    "session_gap_mean",
    "active_day",
    "active_day_last_ms",
)
#: the columns the oracle reads on top of ``TRUTH_COLUMNS``: the state, then the world's name
ORACLE_COLUMNS: Final[tuple[str, ...]] = (*ORACLE_STATE_COLUMNS, "preset", "scenario", "change_day", "seed")


def truth_path(raw_dir: Path) -> Path:
    """Where the sidecar lives inside a raw-data folder."""
    return Path(raw_dir) / TRUTH_DIR / TRUTH_FILE


def load_ground_truth(raw_dir: Path) -> pl.DataFrame | None:
    """Read ``raw_dir/_truth/ground_truth.parquet``; None when absent (e.g. a real export).

    Raises ValueError naming the file when it exists but lacks a sidecar column.
    """
    path = truth_path(raw_dir)
    if not path.is_file():
        return None
    truth = pl.read_parquet(path)
    missing = [c for c in TRUTH_COLUMNS if c not in truth.columns]
    if missing:
        raise ValueError(f"{path}: not a churnflow ground-truth file, missing columns {missing}")
    return truth


def realised_hazard_probabilities(
    truth: pl.DataFrame,
    cutoffs: pl.DataFrame,
    horizon_days: int,
    hazard: Literal["realised", "at_cutoff"] = "realised",
) -> np.ndarray:
    """P(churn in (cutoff, cutoff + horizon_days]) for each row of ``cutoffs`` (``user_id``, ``cutoff``).

    The old oracle, kept for comparison: it reads the hazard path only and ignores the label's rules
    (inactivity dating, censoring); ``churnflow.simulate.oracle.oracle_probabilities`` replaces it.

    ``hazard="realised"`` (default) uses the simulator's realised daily hazard path over the horizon —
    latent information no model sees, so this is the ceiling (it is at least as informative as the
    Bayes-optimal forecast made at the cutoff). ``hazard="at_cutoff"`` freezes the hazard of the cutoff's
    day for the whole horizon (a forecast from the latent state known at the cutoff).
    Conditioning: given the user is still a customer at the cutoff; churn inside the cutoff's day and the
    horizon's last day is counted for the covered fraction of those days (uniform time within a day).
    Rows whose user already churned at or before the cutoff get 1.0 when the churn was silent (the user is
    gone and an inactivity label will fire) and 0.0 when it was a cancellation (no later churn exists).
    Output is aligned with ``cutoffs`` rows; raises ValueError for unknown users or a horizon past the
    stored hazard.
    """
    if horizon_days < 1:
        raise ValueError(f"horizon_days must be >= 1, got {horizon_days}")
    for col in ("user_id", "cutoff"):
        if col not in cutoffs.columns:
            raise ValueError(f"cutoffs frame lacks column {col!r}")
    if cutoffs.height == 0:
        return np.zeros(0)
    index = {u: i for i, u in enumerate(truth["user_id"].to_list())}
    users = cutoffs["user_id"].cast(pl.String).to_list()
    unknown = sorted({u for u in users if u not in index})
    if unknown:
        raise ValueError(f"users not in the ground truth: {unknown[:5]} ({len(unknown)} in all)")
    rows = np.fromiter((index[u] for u in users), dtype=np.int64, count=len(users))
    h = np.vstack([np.asarray(x, dtype=np.float64) for x in truth["hazard"].to_list()])
    n_days = h.shape[1]
    start = truth["hazard_start"].cast(pl.Datetime("ms", "UTC")).dt.epoch("ms").to_numpy()[rows]
    cut_ms = cutoffs["cutoff"].cast(pl.Datetime("ms", "UTC")).dt.epoch("ms").to_numpy()
    c_days = (cut_ms - start) / DAY_MS
    d0 = np.floor(c_days).astype(np.int64)
    f = c_days - d0
    if (d0 + horizon_days).max() >= n_days:
        raise ValueError(
            f"horizon reaches day {(d0 + horizon_days).max()} but the ground truth stores {n_days} days"
        )
    hd = np.where(d0 >= 0, h[rows, np.clip(d0, 0, None)], 0.0)
    if hazard == "at_cutoff":
        first = hd * (1 - f) / np.maximum(1 - hd * f, 1e-12)
        surv = (1 - first) * (1 - hd) ** (horizon_days - 1) * (1 - hd * f)
    elif hazard == "realised":
        log_s = np.concatenate([np.zeros((h.shape[0], 1)), np.cumsum(np.log1p(-h), axis=1)], axis=1)
        lo = np.clip(d0 + 1, 0, None)
        hi = np.clip(d0 + horizon_days, 0, None)  # full days d0+1 .. d0+H-1
        middle = np.exp(log_s[rows, hi] - log_s[rows, lo])
        h_last = h[rows, d0 + horizon_days]
        first = hd * (1 - f) / np.maximum(1 - hd * f, 1e-12)
        surv = (1 - first) * middle * (1 - h_last * f)
    else:
        raise ValueError(f"hazard must be 'realised' or 'at_cutoff', got {hazard!r}")
    prob = 1.0 - surv
    churn_ms = truth["churn_ts"].cast(pl.Datetime("ms", "UTC")).dt.epoch("ms").to_numpy()[rows]
    kind = np.asarray(truth["churn_kind"].to_list(), dtype=object)[rows]
    gone = ~np.isnan(churn_ms.astype(np.float64)) & (churn_ms <= cut_ms)
    prob = np.where(gone & (kind == "silent"), 1.0, np.where(gone, 0.0, prob))
    return prob
