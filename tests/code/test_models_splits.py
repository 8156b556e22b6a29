"""split_by_time: purged by when labels become known, held-out users, two test views, clear errors."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnflow.models.splits import SplitError, split_by_time
from tests.model.synthetic import make_tables


def _labels(n_users: int, n_cutoffs: int, every_days: int = 3, window_days: int = 14) -> pl.DataFrame:
    start = dt.datetime(2024, 1, 1)
    rows = [
        (
            f"u{u}",
            start + dt.timedelta(days=every_days * k),
            int((u + k) % 3 == 0),
            start + dt.timedelta(days=every_days * k + window_days),
        )
        for u in range(n_users)
        for k in range(n_cutoffs)
        if (u * 7 + k) % 11 != 0  # some users miss some cutoffs (not eligible)
    ]
    return pl.DataFrame(rows, schema=["user_id", "cutoff", "label", "known_at"], orient="row")


@settings(max_examples=60, deadline=None)
@given(
    n_users=st.integers(20, 80),
    n_cutoffs=st.integers(6, 30),
    window=st.integers(1, 20),
    n_test=st.integers(1, 3),
    n_val=st.integers(1, 3),
    share=st.floats(0.0, 0.5),
    seed=st.integers(0, 1000),
    refit=st.booleans(),
)
def test_split_invariants(
    n_users: int, n_cutoffs: int, window: int, n_test: int, n_val: int, share: float, seed: int, refit: bool
) -> None:
    labels = _labels(n_users, n_cutoffs, window_days=window)
    try:
        s = split_by_time(labels, n_test, n_val, new_user_share=share, seed=seed, refit=refit)
    except SplitError:
        return
    cut, known = labels["cutoff"], labels["known_at"]
    first_test = s.test_cutoffs[0]
    # every training, validation and development label is known at the first test cutoff
    assert (known.filter(pl.Series(s.train | s.validation | s.development)) <= first_test).all()
    # every tuning-train label is known at the first validation cutoff
    assert (known.filter(pl.Series(s.train)) <= s.validation_cutoffs[0]).all()
    assert not (s.train & s.validation).any() and not (s.train & ~s.development).any()
    assert not ((s.train | s.validation | s.development) & s.test).any()
    if refit:  # the refit uses every label known at the first test cutoff, validation rows included
        assert not (s.validation & ~s.development).any()
        assert s.validation_cutoffs == s.development_cutoffs[-n_val:]
    else:  # the shipped model is the probe: its rows are tuning-train's
        assert (s.development == s.train).all()
    assert s.test_cutoffs == sorted(cut.unique().to_list())[-n_test:]
    assert len(s.validation_cutoffs) == n_val
    # the two views partition the test rows; known customers are exactly the users with development rows
    assert not (s.known_customers & s.new_users).any()
    assert ((s.known_customers | s.new_users) == s.test).all()
    dev_users = set(labels.filter(pl.Series(s.development))["user_id"].to_list())
    view_users = set(labels.filter(pl.Series(s.known_customers))["user_id"].to_list())
    assert view_users <= dev_users
    new_users = set(labels.filter(pl.Series(s.new_users))["user_id"].to_list())
    assert not (new_users & dev_users)


def test_held_out_users_never_train_and_split_is_deterministic() -> None:
    labels = _labels(200, 30)
    a = split_by_time(labels, 3, 2, new_user_share=0.25, seed=3)
    b = split_by_time(labels, 3, 2, new_user_share=0.25, seed=3)
    assert all((getattr(a, f) == getattr(b, f)).all() for f in ("train", "validation", "development", "test"))
    assert 20 < a.n_held_out_users < 80
    assert a.new_users.sum() > 0 and a.known_customers.sum() > a.new_users.sum()
    c = split_by_time(labels, 3, 2, new_user_share=0.25, seed=4)
    assert not (a.new_users == c.new_users).all()
    assert split_by_time(labels, 3, 2, new_user_share=0.0).new_users.sum() == 0


def test_purge_leaves_a_gap_as_long_as_the_label_window() -> None:
    """With labels known 35 days after their cutoff, no training cutoff lies within 35 days of the test."""
    labels = _labels(50, 50, every_days=3, window_days=35)
    s = split_by_time(labels, 3, 2, new_user_share=0.2, refit=True)
    gap = (s.test_cutoffs[0] - s.development_cutoffs[-1]).days
    assert 35 <= gap < 38
    assert s.purged_cutoffs and all(
        s.development_cutoffs[-1] < c < s.test_cutoffs[0] for c in s.purged_cutoffs
    )
    assert (s.validation_cutoffs[0] - s.train_cutoffs[-1]).days >= 35
    described = s.describe()
    assert described["rows"]["development"] == int(s.development.sum())  # type: ignore[index]


def test_too_short_an_export_says_what_is_missing() -> None:
    with pytest.raises(SplitError, match="known by the first test cutoff"):
        split_by_time(_labels(30, 15, every_days=3, window_days=35), 3, 2)
    with pytest.raises(SplitError, match="no tuning-train rows"):
        split_by_time(_labels(30, 25, every_days=3, window_days=35), 3, 2)
    with pytest.raises(SplitError, match="distinct cutoff"):
        split_by_time(_labels(10, 2), 3, 2)
    with pytest.raises(KeyError, match="known_at"):
        split_by_time(_labels(10, 20).drop("known_at"), 1, 1)
    with pytest.raises(SplitError, match="new_user_share"):
        split_by_time(_labels(10, 20), 1, 1, new_user_share=1.0)


def test_synthetic_tables_fit_the_default_split() -> None:
    _, labels = make_tables(60, 10)
    s = split_by_time(labels, 3, 2)
    assert len(s.test_cutoffs) == 3 and s.train.sum() > 0 and s.validation.sum() > 0
    assert not np.isin(s.validation_cutoffs, s.development_cutoffs).any()  # the probe never saw them


@settings(max_examples=120, deadline=None)
@given(data=__import__("tests.code.test_labels", fromlist=["scenario"]).scenario(), delete=st.booleans())
def test_property_no_training_or_validation_label_reads_the_test_period(
    data: tuple[pl.DataFrame, object], delete: bool
) -> None:
    """Change or delete every event at or after the first test cutoff: no development label moves.

    Labels of the development rows (tuning-train and validation included) are recomputed from the
    altered events with only the information available at the first test cutoff (``data_end``) and
    must equal the labels the split trained on.
    """
    import warnings

    from churnflow.labels import LabelWarning, build_labels, label_at_cutoffs

    events, cfg = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LabelWarning)
        labels = build_labels(events, cfg).labels  # type: ignore[arg-type]
    try:
        split = split_by_time(labels, 1, 1, new_user_share=0.0, refit=True)
    except SplitError:
        return
    first_test = split.test_cutoffs[0]
    late = pl.col("ts") >= first_test
    if delete:
        altered = events.filter(~late)
    else:  # every late event becomes a cancellation, and late users appear out of nowhere
        altered = pl.concat(
            [
                events.with_columns(
                    pl.when(late).then(pl.lit("Cancellation Confirmation")).otherwise("page").alias("page")
                ),
                events.filter(late).with_columns(pl.lit("intruder").alias("user_id")),
            ]
        ).sort("user_id", "ts")
    dev = labels.filter(pl.Series(split.train | split.validation | split.development))
    again = label_at_cutoffs(altered, dev.select("user_id", "cutoff"), cfg, data_end=first_test)  # type: ignore[arg-type]
    assert again.select(dev.columns).equals(dev)
