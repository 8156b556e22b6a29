"""What the ``drift_baseline`` stage computes between its reads and writes (no I/O here).

From the training table and the model's own split (:func:`churnflow.models.training.make_split`):

* **feature reference** = the split's ``development`` rows — every row the final model was trained on,
  at every training cutoff;
* **held-out users** = users the split keeps out of training (``train.new_user_share``): their rows are
  out-of-sample for the model at every cutoff. They are divided (by a seeded hash) into two halves:
  half A's rows at the development cutoffs form the **score reference** (out-of-sample probabilities at
  the same offsets as the feature reference); half B is the **self-check** — a window the monitor has
  never seen, from the same world, checked like any new export (expected verdict: no drift; its
  performance windows compare the label-free AUC estimate with the realised AUC at every cutoff). When
  the split holds no held-out user, the test rows are the score reference and there is no self-check;
* **online rows** = a sample of development keys moved to the user's last event before the cutoff
  (+1 ms), where the service computes features, for the online shares.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from churnflow.models.splits import TimeSplit, user_bucket
from churnflow.monitoring.profile import DriftInputError
from churnflow.monitoring.reference import cutoff_offsets

_TS = pl.Datetime("ms", "UTC")
#: Fewer held-out users than this: the score reference is the test rows instead.
MIN_SCORE_USERS = 8
#: Each half needs this many users for a self-check; else every held-out user is the score reference.
MIN_SELF_CHECK_USERS = 20


@dataclass(frozen=True)
class BaselineRows:
    """Row sets of the training table the reference and the self-check are made of."""

    development: pl.DataFrame  # keys, label, features
    score_rows: pl.DataFrame  # keys, label, features: out-of-sample rows at the development cutoffs
    score_source: str  # "held_out_users" | "test"
    self_check: pl.DataFrame | None  # every row (all cutoffs) of the other half of the held-out users


def baseline_rows(frame: pl.DataFrame, split: TimeSplit, seed: int) -> BaselineRows:
    """Split ``frame`` (the joined training table, rows aligned with ``split``'s masks)."""
    if frame.height != split.development.size:
        raise DriftInputError(f"training table has {frame.height} rows, the split {split.development.size}")
    development = frame.filter(pl.Series(split.development))
    if development.height == 0:
        raise DriftInputError("the split has no development rows: nothing to build a reference from")
    at_dev = frame["cutoff"].is_in(
        pl.Series(split.development_cutoffs, dtype=frame.schema["cutoff"]).implode()
    )
    held_rows = at_dev.to_numpy() & ~split.development & ~split.test
    held_users = frame.filter(pl.Series(held_rows))["user_id"].unique()
    if held_users.len() < MIN_SCORE_USERS:
        test = frame.filter(pl.Series(split.test))
        return BaselineRows(development, test, "test", None)
    half_a = user_bucket(frame["user_id"], seed + 7919) < 0.5
    is_held = frame["user_id"].is_in(held_users.implode()).to_numpy()
    score_rows = frame.filter(pl.Series(held_rows & half_a))
    self_check = frame.filter(pl.Series(is_held & ~half_a))
    if min(score_rows["user_id"].n_unique(), self_check["user_id"].n_unique()) < MIN_SELF_CHECK_USERS:
        return BaselineRows(development, frame.filter(pl.Series(held_rows)), "held_out_users", None)
    return BaselineRows(development, score_rows, "held_out_users", self_check)


def self_check_rows(
    rows: pl.DataFrame, scores: np.ndarray, day0: object, reference_offsets: list[int]
) -> pl.DataFrame:
    """Self-check rows in the shape :func:`churnflow.monitoring.check.run_check` reads."""
    offsets = cutoff_offsets(rows["cutoff"], day0)  # type: ignore[arg-type]
    return rows.with_columns(
        pl.Series("offset", offsets),
        pl.Series("in_reference", np.isin(offsets, np.asarray(reference_offsets, dtype=np.int64))),
        pl.Series("churn_probability", np.asarray(scores, dtype=np.float64)),
    )


def last_event_keys(events: pl.DataFrame, keys: pl.DataFrame, max_users: int, seed: int) -> pl.DataFrame:
    """One key per user for up to ``max_users`` users of ``keys`` (seeded), the cutoff moved to the user's
    last event before it + 1 ms (users without an earlier event are dropped)."""
    rng = np.random.default_rng(seed)
    users = np.sort(keys["user_id"].cast(pl.String).unique().to_numpy().astype(str))
    chosen = np.sort(rng.choice(users, min(max_users, users.size), replace=False))
    pool = keys.select(pl.col("user_id").cast(pl.String), pl.col("cutoff").cast(_TS))
    pool = pool.filter(pl.col("user_id").is_in(pl.Series(chosen).implode())).sort(["user_id", "cutoff"])
    pick = rng.random(pool.height)
    sample = (
        pool.with_columns(pl.Series("_r", pick))
        .sort(["user_id", "_r"])
        .unique("user_id", keep="first", maintain_order=True)
        .drop("_r")
    )
    ev = (
        events.filter(pl.col("user_id").cast(pl.String).is_in(pl.Series(chosen).implode()))
        .select(pl.col("user_id").cast(pl.String), pl.col("ts").cast(_TS).alias("last"))
        .sort(["user_id", "last"])
    )
    moved = (
        sample.sort(["user_id", "cutoff"])
        .join_asof(
            ev,
            left_on="cutoff",
            right_on="last",
            by="user_id",
            strategy="backward",
            allow_exact_matches=False,
            check_sortedness=False,
        )
        .drop_nulls("last")
        .select("user_id", (pl.col("last") + pl.duration(milliseconds=1)).alias("cutoff"))
    )
    return moved.sort(["user_id", "cutoff"])
