"""The old realised-hazard oracle (kept for comparison) on hand-built ground truth: exact values, properties
and clear errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnflow.simulate import realised_hazard_probabilities as oracle_probabilities

START = datetime(2018, 10, 1, tzinfo=UTC)
UTC_MS = pl.Datetime("ms", "UTC")


def _truth(
    hazards: list[list[float]],
    kinds: list[str | None] | None = None,
    churn_days: list[float | None] | None = None,
) -> pl.DataFrame:
    n = len(hazards)
    kinds = kinds or [None] * n
    churn_days = churn_days or [None] * n
    return pl.DataFrame(
        {
            "user_id": [str(i + 1) for i in range(n)],
            "churn_kind": pl.Series(kinds, dtype=pl.String),
            "churn_ts": pl.Series(
                [None if d is None else START + timedelta(days=d) for d in churn_days], dtype=UTC_MS
            ),
            "hazard_start": pl.Series([START] * n, dtype=UTC_MS),
            "hazard": pl.Series(hazards, dtype=pl.List(pl.Float64)),
        }
    )


def _cutoffs(rows: list[tuple[str, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_id": [u for u, _ in rows],
            "cutoff": pl.Series([START + timedelta(days=d) for _, d in rows], dtype=UTC_MS),
        }
    )


def test_constant_hazard_at_midnight_gives_the_geometric_probability() -> None:
    truth = _truth([[0.01] * 60, [0.0] * 60])
    p = oracle_probabilities(truth, _cutoffs([("1", 10), ("2", 10)]), 14)
    assert p[0] == pytest.approx(1 - 0.99**14)
    assert p[1] == 0.0


def test_realised_path_counts_only_days_inside_the_horizon() -> None:
    h = [0.0] * 60
    h[20] = 0.5  # inside (10, 24]
    h[30] = 0.9  # outside
    truth = _truth([h])
    assert oracle_probabilities(truth, _cutoffs([("1", 10)]), 14)[0] == pytest.approx(0.5)
    assert oracle_probabilities(truth, _cutoffs([("1", 10)]), 14, hazard="at_cutoff")[0] == 0.0


def test_half_day_cutoff_counts_half_days_at_both_ends() -> None:
    h = [0.0] * 60
    h[10] = 0.2
    h[24] = 0.2
    p = oracle_probabilities(_truth([h]), _cutoffs([("1", 10.5)]), 14)[0]
    first = 0.2 * 0.5 / (1 - 0.2 * 0.5)
    assert p == pytest.approx(1 - (1 - first) * (1 - 0.2 * 0.5))


def test_users_already_gone_at_the_cutoff() -> None:
    truth = _truth([[0.0] * 60, [0.0] * 60], kinds=["silent", "cancel"], churn_days=[5.0, 5.0])
    p = oracle_probabilities(truth, _cutoffs([("1", 10), ("2", 10), ("1", 3)]), 14)
    assert p.tolist() == [1.0, 0.0, 0.0]


def test_rows_align_with_the_cutoffs_frame() -> None:
    truth = _truth([[0.01] * 60, [0.05] * 60])
    p = oracle_probabilities(truth, _cutoffs([("2", 7), ("1", 7), ("2", 14)]), 7)
    assert (
        p[0] == pytest.approx(1 - 0.95**7)
        and p[1] == pytest.approx(1 - 0.99**7)
        and p[2] == pytest.approx(p[0])
    )


def test_errors_name_the_problem() -> None:
    truth = _truth([[0.01] * 30])
    with pytest.raises(ValueError, match="not in the ground truth"):
        oracle_probabilities(truth, _cutoffs([("9", 3)]), 14)
    with pytest.raises(ValueError, match="stores 30 days"):
        oracle_probabilities(truth, _cutoffs([("1", 20)]), 14)
    with pytest.raises(ValueError, match="lacks column 'cutoff'"):
        oracle_probabilities(truth, pl.DataFrame({"user_id": ["1"]}), 14)
    with pytest.raises(ValueError, match="horizon_days"):
        oracle_probabilities(truth, _cutoffs([("1", 3)]), 0)
    assert oracle_probabilities(truth, _cutoffs([]), 14).shape == (0,)


@settings(max_examples=60, deadline=None)
@given(
    hazard=st.lists(st.floats(0.0, 0.3), min_size=70, max_size=70),
    cutoff=st.floats(0.0, 40.0),
    horizon=st.integers(1, 20),
)
def test_probability_is_bounded_and_grows_with_the_horizon(
    hazard: list[float], cutoff: float, horizon: int
) -> None:
    truth = _truth([hazard])
    cut = _cutoffs([("1", cutoff)])
    p = oracle_probabilities(truth, cut, horizon)[0]
    q = oracle_probabilities(truth, cut, horizon + 5)[0]
    assert 0.0 <= p <= q + 1e-12 <= 1.0 + 1e-12
    a = oracle_probabilities(truth, cut, horizon, hazard="at_cutoff")[0]
    assert 0.0 <= a <= 1.0
    assert np.isfinite([p, q, a]).all()
