"""Label-free performance estimate (CBPE), realised metrics, alerts and the domain classifier."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from churnflow.config import EvaluateConfig
from churnflow.config.monitor import MonitorConfig
from churnflow.monitoring.alerts import Alert, apply_cooldown, candidate_alerts, status_of
from churnflow.monitoring.domain import cross_validated_auc, domain_threshold, group_folds
from churnflow.monitoring.drift import ColumnDrift
from churnflow.monitoring.performance import (
    expected_confusion,
    expected_roc_auc,
    label_draws,
    roc_auc,
    targeting_value,
    two_proportion_p,
    window_performance,
)

BUSINESS = EvaluateConfig()


def _quiet_score() -> ColumnDrift:
    """A score column that did not drift (the alerts' score argument)."""
    return ColumnDrift(
        "churn_probability", "score", "numeric", "ks", 0.01, 0.9, 0.9, "wasserstein", 0.0, None, False,
        0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.1, [], [], [],
    )  # fmt: skip


def test_realised_auc_equals_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    p = rng.integers(0, 20, 500) / 20
    y = (rng.random(500) < p).astype(int)
    assert roc_auc(y, p) == pytest.approx(roc_auc_score(y, p))
    assert np.isnan(roc_auc(np.zeros(5), np.arange(5)))


def test_expected_auc_of_certain_scores_is_the_auc() -> None:
    p = np.array([0.0, 1.0, 0.0, 1.0, 1.0])
    assert expected_roc_auc(p) == pytest.approx(roc_auc_score(p.astype(int), p))


def test_expected_auc_matches_the_mean_of_label_draws() -> None:
    p = np.random.default_rng(1).beta(1.2, 6.0, 3000)
    probabilities = np.broadcast_to(p, (300, p.size))
    aucs, positives = label_draws(probabilities, seed=2)
    assert expected_roc_auc(p) == pytest.approx(np.nanmean(aucs), abs=0.005)
    assert positives.mean() == pytest.approx(p.sum(), rel=0.02)
    # each draw's AUC equals sklearn's on that draw
    y = np.random.default_rng(2).random((300, p.size)) < probabilities
    assert aucs[0] == pytest.approx(roc_auc_score(y[0], p))


def test_expected_confusion_adds_up() -> None:
    p = np.array([0.9, 0.6, 0.2, 0.1])
    c = expected_confusion(p, 0.5)
    assert c == pytest.approx({"tp": 1.5, "fp": 0.5, "fn": 0.3, "tn": 1.7})


def test_window_flags_concept_drift_only_when_the_labels_stop_following_the_scores() -> None:
    rng = np.random.default_rng(3)
    p = rng.beta(1.2, 6.0, 2000)
    same = (rng.random(p.size) < p).astype(int)
    ok = window_performance("2024-01-01", True, p, same, None, 300, 4, BUSINESS)
    assert ok.labelled and ok.auc_band[0] <= ok.realised_auc <= ok.auc_band[1]
    assert ok.p_auc > 0.01 and ok.p_rate > 0.01
    # concept drift: churn no longer depends on the score (and is more frequent)
    drifted = (rng.random(p.size) < 0.25).astype(int)
    bad = window_performance("2024-01-01", True, p, drifted, None, 300, 4, BUSINESS)
    assert bad.realised_auc < bad.auc_band[0] and bad.p_auc < 1e-6 and bad.p_rate < 1e-6
    unlabelled = window_performance("2024-01-01", True, p, None, None, 300, 4, BUSINESS)
    assert not unlabelled.labelled and unlabelled.realised_auc is None and unlabelled.p_auc is None


def test_two_proportion_p_equals_scipys_chi_square_without_correction() -> None:
    from scipy.stats import chi2_contingency

    for k_a, n_a, k_b, n_b in [(30, 200, 45, 210), (187, 1000, 125, 1000), (3, 40, 9, 35)]:
        table = [[k_a, n_a - k_a], [k_b, n_b - k_b]]
        expected = chi2_contingency(table, correction=False).pvalue
        assert two_proportion_p(k_a, n_a, k_b, n_b) == pytest.approx(expected, rel=1e-9)
    assert two_proportion_p(0, 10, 0, 12) is None and two_proportion_p(1, 0, 1, 10) is None


def test_label_shift_fires_when_churn_rises_with_unchanged_scores() -> None:
    # price-rise-like concept drift: the scores and their ranking are unchanged, every user churns more;
    # the reference world churned at 12.5% at this offset (2,300 users)
    rng = np.random.default_rng(8)
    p = rng.beta(1.2, 7.0, 2300)
    reference = (288, 2300)
    same = (rng.random(p.size) < 0.125).astype(int)
    risen = (rng.random(p.size) < 0.19).astype(int)
    ok = window_performance("2024-01-01", True, p, same, None, 200, 4, BUSINESS, reference)
    up = window_performance("2024-01-01", True, p, risen, None, 200, 4, BUSINESS, reference)
    assert ok.reference_positive_rate == pytest.approx(288 / 2300)
    assert ok.p_rate_reference > 0.01 and up.p_rate_reference < 1e-6
    live = candidate_alerts([], _quiet_score(), None, 0.8, 0.8, [up], MonitorConfig(), "2024-01-01")
    assert "label_shift" in {a.kind for a in live}
    quiet = candidate_alerts([], _quiet_score(), None, 0.8, 0.8, [ok], MonitorConfig(), "2024-01-01")
    assert "label_shift" not in {a.kind for a in quiet}
    # no reference rate, or an unlabelled window: nothing to test
    assert window_performance("2024-01-01", True, p, risen, None, 200, 4, BUSINESS).p_rate_reference is None
    assert (
        window_performance("2024-01-01", True, p, None, None, 200, 4, BUSINESS, reference).p_rate_reference
        is None
    )


def test_targeting_value_uses_the_business_config() -> None:
    p = np.array([0.9, 0.8, 0.1, 0.1])
    y = np.array([1, 0, 0, 1])
    expected, realised = targeting_value(p, y, EvaluateConfig(top_k_share=0.5))
    gain = BUSINESS.intervention_success_rate * BUSINESS.value_per_retained_user
    assert expected == pytest.approx(1.7 * gain - 2 * BUSINESS.intervention_cost)
    assert realised == pytest.approx(1 * gain - 2 * BUSINESS.intervention_cost)


# -------------------------------------------------------------------------------------------- alerts
def test_cooldown_suppresses_a_repeat_within_the_window_only() -> None:
    first = [Alert("feature_drift", "critical", "m", "2024-01-10T00:00:00+00:00")]
    raised, state = apply_cooldown(first, {}, cooldown_days=7)
    assert not raised[0].suppressed and state == {"feature_drift": "2024-01-10T00:00:00+00:00"}
    again = [Alert("feature_drift", "critical", "m", "2024-01-13T00:00:00+00:00")]
    quiet, state2 = apply_cooldown(again, state, cooldown_days=7)
    assert quiet[0].suppressed and state2 == state and status_of(quiet) == "ok"
    later = [Alert("feature_drift", "warning", "m", "2024-01-18T00:00:00+00:00")]
    loud, _ = apply_cooldown(later, state, cooldown_days=7)
    assert not loud[0].suppressed and status_of(loud) == "warning"


# ------------------------------------------------------------------------------------------- domain
def test_group_folds_keep_a_users_rows_together() -> None:
    groups = np.repeat(np.arange(30), 4)
    folds = group_folds(groups, 3, seed=0)
    for g in range(30):
        assert len(set(folds[groups == g])) == 1
    assert sorted(np.bincount(folds)) == [40, 40, 40]


def test_domain_classifier_separates_only_shifted_samples() -> None:
    rng = np.random.default_rng(4)
    users = np.repeat(np.arange(150), 4)
    trait = rng.normal(size=150)[users]
    ref = np.clip(np.column_stack([trait * 20 + 100, rng.integers(0, 5, users.size)]), 0, 254).astype(
        np.uint8
    )
    same_trait = rng.normal(size=150)[users]
    same = np.clip(np.column_stack([same_trait * 20 + 100, rng.integers(0, 5, users.size)]), 0, 254).astype(
        np.uint8
    )
    shifted = same.copy()
    shifted[:, 0] = np.clip(same_trait * 20 + 115, 0, 254)
    null = cross_validated_auc(ref, users, same, users, 3, seed=1)
    drift = cross_validated_auc(ref, users, shifted, users, 3, seed=1)
    assert abs(null - 0.5) < 0.08 and drift > 0.6
    # folds that split a user's rows let the classifier recognise users: no drift, yet a high AUC
    rows = np.arange(users.size)
    assert cross_validated_auc(ref, rows, same, rows, 3, seed=1) > null + 0.1


def test_domain_threshold_is_centred_at_least_at_one_half() -> None:
    # reference halves whose null AUCs happened to average 0.45 must not pull the threshold below the
    # null centre 0.5 (a mini reference's 4 splits averaged 0.47 and the threshold false-alarmed 2 of 20)
    low = {"null_mean": 0.45, "null_sd": 0.02, "null_users": [60, 60]}
    high = {**low, "null_mean": 0.52}
    mw_sd = np.sqrt((120 + 120 + 1) / (12.0 * 120 * 120))  # floor: Mann-Whitney null sd of 120 vs 120
    assert domain_threshold(low, 120, 120, 3.0) == pytest.approx(0.5 + 3.0 * mw_sd)
    assert domain_threshold(high, 120, 120, 3.0) == pytest.approx(0.52 + 3.0 * mw_sd)
    # a noisier calibration (sd above the floor) is rescaled from 60 + 60 users to the check's 120 + 120
    noisy = {**low, "null_sd": 0.08}
    assert domain_threshold(noisy, 120, 120, 3.0) == pytest.approx(0.5 + 3.0 * 0.08 * np.sqrt(0.5))


def test_platt_recalibration_fixes_a_known_miscalibration() -> None:
    from churnflow.monitoring.performance import fit_platt, recalibrate

    rng = np.random.default_rng(6)
    truth = rng.beta(1.5, 6.0, 4000)
    y = (rng.random(truth.size) < truth).astype(int)
    served = truth**0.6  # over-confident and too high
    cal = fit_platt(served, y)
    fixed = recalibrate(served, cal)
    assert cal["method"] == "platt" and cal["slope"] > 0
    assert abs(fixed.mean() - y.mean()) < 0.01 < abs(served.mean() - y.mean())
    assert roc_auc(y, fixed) == pytest.approx(roc_auc(y, served))  # monotone: the ranking is kept
    assert fit_platt(served[:30], y[:30])["method"] == "none"  # too few of a class: identity
    assert np.array_equal(recalibrate(served, {"method": "none"}), served)
    # the same rows as 4,000 users or as 200 users with 20 rows each: the clustered fit is less certain
    clustered = fit_platt(served, y, n_users=200)
    assert np.diag(clustered["cov"]).sum() > 5 * np.diag(cal["cov"]).sum()


def test_an_uncertain_recalibration_widens_the_band() -> None:
    from churnflow.monitoring.performance import fit_platt

    rng = np.random.default_rng(8)
    truth = rng.beta(1.5, 6.0, 3000)
    y = (rng.random(truth.size) < truth).astype(int)
    certain = fit_platt(truth, y)
    uncertain = fit_platt(truth, y, n_users=30)
    p = rng.beta(1.5, 6.0, 1500)
    narrow = window_performance("2024-01-01", True, p, None, certain, 300, 4, BUSINESS)
    wide = window_performance("2024-01-01", True, p, None, uncertain, 300, 4, BUSINESS)
    width = lambda w: w.positive_rate_band[1] - w.positive_rate_band[0]  # noqa: E731
    assert width(wide) > 1.5 * width(narrow)
