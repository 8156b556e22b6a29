"""Drift statistics checked against scipy's implementations on known samples, plus properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from churnflow.monitoring.stats import (
    ScaledChi2,
    adjust_pvalues,
    chi2_test,
    jensen_shannon,
    ks_pvalue,
    ks_statistic,
    psi,
    wasserstein,
)


def _counts(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both samples counted over the union of their values (an exact support)."""
    support = np.union1d(a, b)
    ca = np.array([np.sum(a == v) for v in support], dtype=float)
    cb = np.array([np.sum(b == v) for v in support], dtype=float)
    return support, ca, cb


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ks_statistic_and_pvalue_equal_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.poisson(4.0, 700).astype(float)
    b = rng.poisson(4.6, 300).astype(float)
    _, ca, cb = _counts(a, b)
    expected = sps.ks_2samp(a, b, method="asymp")
    d = ks_statistic(ca, cb)
    assert d == pytest.approx(expected.statistic, abs=1e-12)
    assert ks_pvalue(d, a.size, b.size) == pytest.approx(expected.pvalue, rel=1e-9)


def test_ks_on_continuous_values_equals_scipy() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=400), rng.normal(0.3, size=250)
    _, ca, cb = _counts(a, b)
    assert ks_statistic(ca, cb) == pytest.approx(sps.ks_2samp(a, b).statistic, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 5])
def test_chi2_equals_scipy_contingency(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.multinomial(900, [0.5, 0.3, 0.15, 0.05]).astype(float)
    cur = rng.multinomial(300, [0.4, 0.35, 0.15, 0.10]).astype(float)
    stat, p, dof = chi2_test(ref, cur, ref.sum(), cur.sum())
    expected = sps.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert stat == pytest.approx(expected.statistic, rel=1e-10)
    assert p == pytest.approx(expected.pvalue, rel=1e-8)
    assert dof == expected.dof


def test_chi2_with_effective_sizes_divides_the_statistic_by_the_design_effect() -> None:
    ref, cur = np.array([600.0, 400.0]), np.array([250.0, 250.0])
    full, _, _ = chi2_test(ref, cur, 1000, 500)
    clustered, _, _ = chi2_test(ref, cur, 250, 125)  # 4 rows per user
    assert clustered == pytest.approx(full / 4)


def test_chi2_pools_sparse_cells() -> None:
    ref, cur = np.array([500.0, 480.0, 2.0, 1.0]), np.array([100.0, 95.0, 1.0, 0.0])
    _, p, dof = chi2_test(ref, cur, ref.sum(), cur.sum())
    assert dof == 2  # the two sparse cells pooled into one
    assert 0.0 <= p <= 1.0


def test_psi_known_value() -> None:
    ref, cur = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    expected = (0.25 - 0.5) * np.log(0.25 / 0.5) + (0.75 - 0.5) * np.log(0.75 / 0.5)
    assert psi(ref, cur, 1e-4) == pytest.approx(expected)
    assert psi(np.array([10.0, 10.0]), np.array([5.0, 15.0]), 1e-4) == pytest.approx(expected)


def test_jensen_shannon_equals_scipy() -> None:
    rng = np.random.default_rng(7)
    p, q = rng.random(12), rng.random(12)
    q[3] = 0.0
    assert jensen_shannon(p, q) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 9])
def test_wasserstein_equals_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.gamma(2.0, 3.0, 500).round(1)
    b = (rng.gamma(2.0, 3.0, 200) + 1.0).round(1)
    support, ca, cb = _counts(a, b)
    expected = sps.wasserstein_distance(support, support, ca, cb)
    assert wasserstein(support, ca, cb) == pytest.approx(expected, rel=1e-10)
    assert wasserstein(support, ca, cb) == pytest.approx(sps.wasserstein_distance(a, b), rel=1e-10)


def test_benjamini_hochberg_equals_scipy_and_bonferroni() -> None:
    rng = np.random.default_rng(11)
    p = np.concatenate([rng.uniform(size=40), rng.uniform(0, 1e-3, size=5)])
    assert np.allclose(adjust_pvalues(p, "bh"), sps.false_discovery_control(p, method="bh"))
    assert np.allclose(adjust_pvalues(p, "bonferroni"), np.minimum(p * p.size, 1.0))
    assert np.array_equal(adjust_pvalues(p, "none"), p)
    with pytest.raises(ValueError, match=r"monitor\.correction"):
        adjust_pvalues(p, "holm")


def test_scaled_chi2_recovers_a_scaled_chi_square() -> None:
    rng = np.random.default_rng(5)
    values = 2.5 * rng.chisquare(6, size=4000)
    law = ScaledChi2.fit(values)
    assert law.scale == pytest.approx(2.5, rel=0.1)
    assert law.df == pytest.approx(6, rel=0.1)
    # p-values at sizes n, m: g = (1/n + 1/m) · scale · χ²
    g = (1 / 100 + 1 / 400) * 2.5 * sps.chi2.ppf(0.99, 6)
    assert law.pvalue(g, 100, 400) == pytest.approx(0.01, rel=0.2)
    assert law.quantile(0.99, 100, 400) == pytest.approx(g, rel=0.2)


def test_scaled_chi2_of_a_constant_column() -> None:
    law = ScaledChi2.fit(np.zeros(20))
    assert law.pvalue(0.0, 10, 10) == 1.0 and law.pvalue(0.01, 10, 10) == 0.0


counts = st.lists(st.integers(0, 50), min_size=2, max_size=12)


@settings(max_examples=60, deadline=None)
@given(counts, counts)
def test_effects_are_bounded_and_zero_for_identical_shares(a: list[int], b: list[int]) -> None:
    n = min(len(a), len(b))
    ca, cb = np.array(a[:n], dtype=float) + 1, np.array(b[:n], dtype=float) + 1
    assert psi(ca, cb, 1e-4) >= 0.0
    assert 0.0 <= jensen_shannon(ca, cb) <= 1.0 + 1e-12
    assert 0.0 <= ks_statistic(ca, cb) <= 1.0
    assert psi(ca, 3 * ca, 1e-4) == pytest.approx(0.0, abs=1e-12)
    assert jensen_shannon(ca, 2 * ca) == pytest.approx(0.0, abs=1e-7)
    assert jensen_shannon(ca, cb) == pytest.approx(jensen_shannon(cb, ca), abs=1e-12)
