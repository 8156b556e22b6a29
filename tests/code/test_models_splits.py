"""split_by_time: test = latest cutoffs, validation out-of-time and user-grouped, purge, fallbacks, errors."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnflow.models.splits import split_by_time
from tests.model.synthetic import make_tables


def _labels(n_users: int, n_cutoffs: int, every_days: int = 7, horizon: int = 14) -> pl.DataFrame:
    rows = [
        (f"u{u}", dt.datetime(2024, 1, 1) + dt.timedelta(days=every_days * k), (u + k) % 3 == 0, horizon)
        for u in range(n_users)
        for k in range(n_cutoffs)
    ]
    return pl.DataFrame(rows, schema=["user_id", "cutoff", "label", "horizon_days"], orient="row")


@settings(max_examples=40, deadline=None)
@given(
    n_users=st.integers(20, 80),
    n_cutoffs=st.integers(3, 9),
    n_test=st.integers(1, 2),
    n_val=st.integers(1, 2),
    share=st.floats(0.2, 0.8),
    seed=st.integers(0, 1000),
)
def test_split_invariants(
    n_users: int, n_cutoffs: int, n_test: int, n_val: int, share: float, seed: int
) -> None:
    labels = _labels(n_users, n_cutoffs)
    try:
        s = split_by_time(labels, n_test, n_val, validation_user_share=share, seed=seed)
    except ValueError as exc:  # an empty side must be explained, never silently produced
        assert "empty" in str(exc) or "cutoff" in str(exc)
        return
    cutoffs = labels["cutoff"].to_numpy()
    users = labels["user_id"].to_numpy()
    latest = sorted(set(labels["cutoff"].to_list()))[-n_test:]
    assert set(labels.filter(pl.Series(s.test))["cutoff"].to_list()) == set(latest)
    assert not (s.test & (s.train | s.validation | s.development)).any()
    assert not (s.train & s.validation).any()
    assert set(users[s.train]).isdisjoint(set(users[s.validation])), "a user on both sides"
    assert ((s.train | s.validation) <= s.development).all()
    if s.validation_out_of_time:
        assert cutoffs[s.train].max() < cutoffs[s.validation].min()
    assert cutoffs[s.development].max() < cutoffs[s.test].min()


def test_split_is_deterministic_and_seeded() -> None:
    labels = _labels(100, 6)
    a, b = split_by_time(labels, 1, 1, seed=3), split_by_time(labels, 1, 1, seed=3)
    assert np.array_equal(a.validation, b.validation) and np.array_equal(a.train, b.train)
    c = split_by_time(labels, 1, 1, seed=4)
    assert not np.array_equal(a.validation, c.validation)


def test_two_cutoffs_fall_back_to_user_grouped_validation() -> None:
    s = split_by_time(_labels(60, 2), 1, 1)
    assert not s.validation_out_of_time
    assert s.validation_cutoffs == s.train_cutoffs == s.development_cutoffs
    assert (
        s.label_overlap_rows == 60
    )  # 7-day spacing, 14-day horizon: every training label reaches the test cutoff


def test_purge_drops_rows_whose_label_window_reaches_the_test_cutoff() -> None:
    labels = _labels(50, 8)
    s = split_by_time(labels, 1, 1, purge=True)
    ends = labels["cutoff"].to_numpy() + np.timedelta64(14, "D")
    first_test = labels["cutoff"].to_numpy()[s.test].min()
    assert (ends[s.development] <= first_test).all()
    first_val = labels["cutoff"].to_numpy()[s.validation].min()
    assert (ends[s.train] <= first_val).all()
    assert s.label_overlap_rows == 0


def test_purge_with_too_little_data_fails_clearly() -> None:
    with pytest.raises(ValueError, match="purge"):
        split_by_time(_labels(30, 2), 1, 1, purge=True)


def test_too_few_cutoffs_and_missing_columns_fail_clearly() -> None:
    with pytest.raises(ValueError, match="distinct cutoff"):
        split_by_time(_labels(10, 1), 1, 1)
    with pytest.raises(KeyError, match="horizon_days"):
        split_by_time(_labels(10, 3).drop("horizon_days"), 1, 1)
    with pytest.raises(ValueError, match="validation_user_share"):
        split_by_time(_labels(10, 3), 1, 1, validation_user_share=1.0)


def test_synthetic_tables_split() -> None:
    _, labels = make_tables(50, 5)
    s = split_by_time(labels, 1, 1)
    assert s.test.sum() == 50 and s.validation_out_of_time
