"""Purged, time- and user-aware splits of the labels table (user_id, cutoff, label, ..., known_at).

A label becomes knowable at ``known_at`` (``churnflow.labels.label_known_at``: cutoff + horizon +
inactivity days). A model trained at time T can only have learnt from labels known by T, so:

* **test** = rows at the latest ``n_test_cutoffs`` cutoffs (T1 = the first of them) — never tuned on,
  nothing is chosen on them;
* **held-out users** = a seeded, hash-chosen ``new_user_share`` of users that never enter training,
  tuning or validation: with the users who appear only after training they form the *new users* view;
* **eligible** = rows of the other users whose ``known_at <= T1`` (the labels a model at T1 may use);
* **validation** (tuning, calibration, threshold, business operating point) = eligible rows at the latest
  ``n_validation_cutoffs`` eligible cutoffs (V1 = the first of them);
* **train** (tuning's training side) = eligible rows whose ``known_at <= V1``;
* **development** = the rows the shipped model is fitted on: ``train`` (default: the model whose
  calibrator and decisions were fitted on its own out-of-time validation predictions is the one shipped),
  or every eligible row with ``refit`` (a refit on more recent labels, which the validation-fitted
  calibrator was not fitted for).

So every training and validation label is knowable at T1, and every tuning-train label at V1: changing
or deleting any event at or after T1 changes no training or validation label (a property test checks it).
The test rows split into two views: **known customers** (users with development rows: the deployment
case, the same users scored later) and **new users** (no development row).

All masks are boolean arrays aligned with the input rows, so they apply to the joined (features + labels)
frame just as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import polars as pl

LABEL_COLUMNS: tuple[str, ...] = ("user_id", "cutoff", "label", "known_at")


class SplitError(ValueError):
    """The labels cannot hold the requested purged split (the message says what is missing)."""


@dataclass(frozen=True)
class TimeSplit:
    """Boolean masks over the rows of the labels table (aligned with its row order) and their cutoffs."""

    train: np.ndarray  # tuning's training rows: known at the first validation cutoff
    validation: np.ndarray  # the latest cutoffs with labels known by the first test cutoff
    development: np.ndarray  # the shipped model's rows: train, or (refit) every eligible row
    test: np.ndarray  # the latest cutoffs (every user)
    known_customers: np.ndarray  # test rows of users with development rows
    new_users: np.ndarray  # test rows of users without development rows
    test_cutoffs: list[datetime]
    validation_cutoffs: list[datetime]
    train_cutoffs: list[datetime]
    development_cutoffs: list[datetime]
    purged_cutoffs: list[datetime] = field(default_factory=list)  # labelled, but known only after T1
    n_held_out_users: int = 0

    def views(self) -> dict[str, np.ndarray]:
        """The test views by name (``known_customers``, ``new_users``, ``all``)."""
        return {"known_customers": self.known_customers, "new_users": self.new_users, "all": self.test}

    def describe(self) -> dict[str, object]:
        """Cutoffs (ISO) and row counts of each part (JSON-ready, deterministic)."""

        def iso(values: list[datetime]) -> list[str]:
            return [v.isoformat() for v in values]

        return {
            "test_cutoffs": iso(self.test_cutoffs),
            "validation_cutoffs": iso(self.validation_cutoffs),
            "train_cutoffs": iso(self.train_cutoffs),
            "development_cutoffs": iso(self.development_cutoffs),
            "purged_cutoffs": iso(self.purged_cutoffs),
            "rows": {
                name: int(mask.sum())
                for name, mask in (
                    ("train", self.train),
                    ("validation", self.validation),
                    ("development", self.development),
                    ("test", self.test),
                    ("known_customers", self.known_customers),
                    ("new_users", self.new_users),
                )
            },
            "held_out_users": self.n_held_out_users,
        }


def _check_labels(labels: pl.DataFrame) -> None:
    missing = [c for c in LABEL_COLUMNS if c not in labels.columns]
    if missing:
        raise KeyError(
            f"labels table lacks column(s) {missing}; expected at least {list(LABEL_COLUMNS)} "
            "(re-run the label stage: labels carry `known_at` since the purged splits)"
        )


def user_bucket(user_ids: pl.Series, seed: int) -> np.ndarray:
    """A stable pseudo-random number in [0, 1) per user (same user → same number for a given seed)."""
    hashed = user_ids.cast(pl.Utf8).hash(seed=seed).to_numpy().astype(np.uint64)
    return (hashed % np.uint64(1_000_003)).astype(np.float64) / 1_000_003.0


def _cutoffs(labels: pl.DataFrame, mask: np.ndarray) -> list[datetime]:
    return sorted(labels.filter(pl.Series(mask)).get_column("cutoff").unique().to_list())


def split_by_time(
    labels: pl.DataFrame,
    n_test_cutoffs: int,
    n_validation_cutoffs: int,
    *,
    new_user_share: float = 0.2,
    seed: int = 42,
    refit: bool = False,
) -> TimeSplit:
    """Split ``labels`` rows into purged tuning-train / validation / development / test (module docstring).

    Raises :class:`SplitError` naming what is missing when the labels span too few cutoffs for it.
    """
    _check_labels(labels)
    if n_test_cutoffs < 1 or n_validation_cutoffs < 1:
        raise SplitError("train.n_test_cutoffs and tune.n_validation_cutoffs must both be >= 1")
    if not 0.0 <= new_user_share < 1.0:
        raise SplitError(f"train.new_user_share must be in [0, 1), got {new_user_share}")
    cutoffs = sorted(labels.get_column("cutoff").unique().to_list())
    if len(cutoffs) < n_test_cutoffs + 1:
        raise SplitError(
            f"labels have {len(cutoffs)} distinct cutoff(s); need at least {n_test_cutoffs + 1} "
            f"({n_test_cutoffs} test + earlier ones to train on)"
        )
    test_cutoffs = cutoffs[-n_test_cutoffs:]
    first_test = test_cutoffs[0]
    cutoff_col = labels.get_column("cutoff")
    known_at = labels.get_column("known_at")
    test = cutoff_col.is_in(test_cutoffs).to_numpy()
    held_out = user_bucket(labels.get_column("user_id"), seed) < new_user_share
    known_by_test = (known_at <= first_test).to_numpy() & ~test
    eligible = known_by_test & ~held_out
    dev_cutoffs = _cutoffs(labels, eligible)
    purged = [c for c in cutoffs if c not in test_cutoffs and c not in dev_cutoffs]
    lag = labels.select((pl.col("known_at") - pl.col("cutoff")).max()).item()
    if len(dev_cutoffs) < n_validation_cutoffs + 1:
        raise SplitError(
            f"only {len(dev_cutoffs)} cutoff(s) have labels known by the first test cutoff "
            f"{first_test:%Y-%m-%d} (labels become known {lag} after their cutoff); tuning needs "
            f"{n_validation_cutoffs} validation cutoff(s) and earlier ones to train on. Use a longer "
            "export (e.g. data=standard), fewer test/validation cutoffs, or a shorter churn definition"
        )
    validation_cutoffs = dev_cutoffs[-n_validation_cutoffs:]
    validation = eligible & cutoff_col.is_in(validation_cutoffs).to_numpy()
    train = eligible & (known_at <= validation_cutoffs[0]).to_numpy()
    if not train.any():
        raise SplitError(
            f"no tuning-train rows: no label is known by the first validation cutoff "
            f"{validation_cutoffs[0]:%Y-%m-%d} (labels become known {lag} after their cutoff); the data span "
            f"{cutoffs[0]:%Y-%m-%d} to {cutoffs[-1]:%Y-%m-%d} is too short for purged tuning — use a longer "
            "export, fewer validation cutoffs or a shorter churn definition"
        )
    development = eligible if refit else train
    dev_users = labels.filter(pl.Series(development)).get_column("user_id").unique()
    known_customer = labels.get_column("user_id").is_in(dev_users.implode()).to_numpy()
    for name, mask in (("validation", validation), ("development", development), ("test", test)):
        if not mask.any():
            raise SplitError(f"the {name} split is empty: use more data or fewer test/validation cutoffs")
    users = labels.select("user_id").unique()
    n_held = int((user_bucket(users.get_column("user_id"), seed) < new_user_share).sum())
    return TimeSplit(
        train=train,
        validation=validation,
        development=development,
        test=test,
        known_customers=test & known_customer,
        new_users=test & ~known_customer,
        test_cutoffs=list(test_cutoffs),
        validation_cutoffs=list(validation_cutoffs),
        train_cutoffs=_cutoffs(labels, train),
        development_cutoffs=_cutoffs(labels, development),
        purged_cutoffs=purged,
        n_held_out_users=n_held,
    )
