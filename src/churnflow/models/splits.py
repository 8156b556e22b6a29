"""Time- and user-aware splits of the labels table (user_id, cutoff, label, ..., horizon_days).

* **test** = rows at the latest ``n_test_cutoffs`` cutoffs — never seen by tuning;
* **validation** (tuning only) = rows at the latest ``n_validation_cutoffs`` of the remaining cutoffs,
  for a seeded, hash-chosen share of users; **train** = rows at earlier cutoffs of the *other* users. So
  validation is out-of-time and a user's rows never sit on both sides of train/validation. When no earlier
  cutoff remains (e.g. the 63-day ``mini`` preset yields two labelled cutoffs), validation falls back to
  the held-out users at the same cutoffs (user-grouped, not out-of-time; ``validation_out_of_time=False``);
* **purge** (``train.purge_label_overlap``; off by default: short exports would lose every row): a
  training row whose label window ``[cutoff, cutoff + horizon_days]`` reaches past the first cutoff of
  the next split is dropped — its label would be known only after that split's cutoff, which a model
  trained at that time could not have seen. With purge off, ``label_overlap_rows`` counts such rows.

All functions return boolean masks / row indices aligned with the input rows, so they apply to the
joined (features + labels) frame just as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import polars as pl

LABEL_COLUMNS: tuple[str, ...] = ("user_id", "cutoff", "label", "horizon_days")


@dataclass(frozen=True)
class TimeSplit:
    """Boolean masks over the rows of the labels table (aligned with its row order)."""

    train: np.ndarray  # rows usable to fit during tuning (train side of the validation split)
    validation: np.ndarray  # out-of-time, user-grouped validation rows
    development: np.ndarray  # all rows before the test cutoffs (final fit), purged against the test cutoffs
    test: np.ndarray  # the latest cutoffs
    test_cutoffs: list
    validation_cutoffs: list
    train_cutoffs: list
    development_cutoffs: list
    validation_out_of_time: bool = (
        True  # False: too few cutoffs, validation is user-grouped at the same cutoffs
    )
    label_overlap_rows: int = 0  # development rows whose label window reaches past the first test cutoff


def _check_labels(labels: pl.DataFrame) -> None:
    missing = [c for c in LABEL_COLUMNS if c not in labels.columns]
    if missing:
        raise KeyError(f"labels table lacks column(s) {missing}; expected at least {list(LABEL_COLUMNS)}")


def _user_bucket(user_ids: pl.Series, seed: int) -> np.ndarray:
    """A stable pseudo-random number in [0, 1) per user (same user → same number for a given seed)."""
    hashed = user_ids.cast(pl.Utf8).hash(seed=seed).to_numpy().astype(np.uint64)
    return (hashed % np.uint64(1_000_003)).astype(np.float64) / 1_000_003.0


def _purge(labels: pl.DataFrame, before: object) -> np.ndarray:
    """Rows whose label window ends at or before ``before``."""
    ends = labels.select(pl.col("cutoff") + pl.duration(days=pl.col("horizon_days"))).to_series()
    return (ends <= before).to_numpy()


def split_by_time(
    labels: pl.DataFrame,
    n_test_cutoffs: int,
    n_validation_cutoffs: int,
    *,
    validation_user_share: float = 0.5,
    seed: int = 42,
    purge: bool = False,
) -> TimeSplit:
    """Split ``labels`` rows by cutoff time, grouping users between train and validation.

    Raises ``ValueError`` naming the count when there are too few distinct cutoffs for the requested split.
    """
    _check_labels(labels)
    if n_test_cutoffs < 1 or n_validation_cutoffs < 1:
        raise ValueError("n_test_cutoffs and n_validation_cutoffs must both be >= 1")
    if not 0.0 < validation_user_share < 1.0:
        raise ValueError(f"validation_user_share must be in (0, 1), got {validation_user_share}")
    cutoffs = sorted(labels.get_column("cutoff").unique().to_list())
    if len(cutoffs) < n_test_cutoffs + 1:
        raise ValueError(
            f"labels have {len(cutoffs)} distinct cutoff(s); need at least {n_test_cutoffs + 1} "
            f"({n_test_cutoffs} test + 1 to train on)"
        )
    test_cutoffs = cutoffs[-n_test_cutoffs:]
    cutoff_col = labels.get_column("cutoff")
    test = cutoff_col.is_in(test_cutoffs).to_numpy()
    before_test = ~test
    reaches_test = before_test & ~_purge(labels, test_cutoffs[0])
    development = before_test & ~reaches_test if purge else before_test
    dev_cutoffs = sorted(labels.filter(pl.Series(development)).get_column("cutoff").unique().to_list())
    if not dev_cutoffs:
        raise ValueError(
            f"no training rows remain: all {int(before_test.sum())} rows before the test cutoff(s) have "
            "label windows reaching into the test period and purge is on (train.purge_label_overlap); "
            "use more data, fewer test cutoffs, or turn purging off"
        )
    out_of_time = len(dev_cutoffs) > n_validation_cutoffs
    validation_cutoffs = dev_cutoffs[-n_validation_cutoffs:] if out_of_time else list(dev_cutoffs)
    in_validation_time = cutoff_col.is_in(validation_cutoffs).to_numpy() & development
    validation_user = _user_bucket(labels.get_column("user_id"), seed) < validation_user_share
    validation = in_validation_time & validation_user
    if out_of_time:
        candidates = development & ~in_validation_time
        if purge:
            candidates &= _purge(labels, validation_cutoffs[0])
    else:
        candidates = development
    train = candidates & ~validation_user
    train_cutoffs = sorted(labels.filter(pl.Series(train)).get_column("cutoff").unique().to_list())
    for name, mask in (("train", train), ("validation", validation)):
        if not mask.any():
            raise ValueError(
                f"the {name} split is empty (cutoffs: {len(cutoffs)}, test {n_test_cutoffs}, validation "
                f"{n_validation_cutoffs}, purge={purge}, validation_user_share={validation_user_share}); "
                "use fewer test/validation cutoffs or more data"
            )
    return TimeSplit(
        train=train,
        validation=validation,
        development=development,
        test=test,
        test_cutoffs=list(test_cutoffs),
        validation_cutoffs=list(validation_cutoffs),
        train_cutoffs=train_cutoffs,
        development_cutoffs=dev_cutoffs,
        validation_out_of_time=out_of_time,
        label_overlap_rows=int((development & reaches_test).sum()),
    )


def horizon_delta(days: int) -> timedelta:
    """``days`` as a timedelta (helper for callers comparing label windows)."""
    return timedelta(days=days)
