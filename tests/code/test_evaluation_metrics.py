"""Evaluation maths: thresholds, weighted/bootstrap metrics (checked against scikit-learn), calibration,
lift/capture, business curve and operating point, calibrators, leakage audit, tables."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, roc_auc_score

from churnflow.config import EvaluateConfig
from churnflow.evaluation import plots
from churnflow.evaluation.business import business_curve, business_summary
from churnflow.evaluation.leakage import single_feature_aucs
from churnflow.evaluation.metrics import check_binary, classification_metrics, paired_comparison
from churnflow.models.calibration import Calibrator, fit_calibrator
from churnflow.models.decision import choose_operating_point, choose_threshold
from churnflow.stats import (
    capture_at,
    expected_calibration_error,
    lift_at,
    user_bootstrap_weights,
    weighted_average_precision,
    weighted_roc_auc,
)


def _scores(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    y = (rng.random(n) < p).astype(int)  # perfectly calibrated by construction
    return y, p


def test_threshold_rules() -> None:
    y = np.array([0, 0, 1, 0, 1, 1, 1, 0])
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
    f1 = choose_threshold(y, p, "max_f1")
    assert f1.threshold == pytest.approx(0.3)  # predicting the top 6 gives P=4/6, R=1 → F1 0.8 (the best)
    prec = choose_threshold(y, p, "target_precision", target_precision=0.75)
    assert prec.threshold == pytest.approx(0.6)  # top 4: precision 3/4 ≥ 0.75 with the most recall
    topk = choose_threshold(y, p, "top_k", top_k_share=0.25)
    assert topk.threshold == pytest.approx(0.8) and (p >= topk.threshold).sum() == 2
    fallback = choose_threshold(y, p, "target_precision", target_precision=0.99)
    assert fallback.rule == "max_f1" and "fell back" in fallback.how
    with pytest.raises(ValueError, match="threshold rule"):
        choose_threshold(y, p, "magic")


def test_classification_metrics_keys_and_values() -> None:
    y, p = _scores()
    users = np.arange(len(y)) // 3  # three rows per user
    w = user_bootstrap_weights(users, 200, seed=1)
    m = classification_metrics(y, p, 0.5, users=users, weights=w)
    for key in ("roc_auc", "roc_auc_ci", "pr_auc", "log_loss", "brier", "ece", "f1", "precision", "recall"):
        assert key in m
    for key in ("threshold", "lift_at_10", "lift_at_25", "capture_at_25", "n_users", "mean_probability_ci"):
        assert key in m
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, p))
    lo, hi = m["roc_auc_ci"]
    assert lo < m["roc_auc"] < hi and hi - lo < 0.1
    assert m["ece"] < 0.05 and m["n_users"] == len(np.unique(users))  # calibrated scores
    assert m == classification_metrics(y, p, 0.5, users=users, weights=w)  # deterministic


@settings(max_examples=60, deadline=None)
@given(n=st.integers(4, 200), seed=st.integers(0, 10_000), ties=st.booleans())
def test_weighted_metrics_equal_sklearn_on_repeated_rows(n: int, seed: int, ties: bool) -> None:
    """Integer weights = the rows repeated: AUC and AP equal scikit-learn's on the expanded data."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    y[0], y[1] = 0, 1
    p = np.round(rng.random(n), 1) if ties else rng.random(n)
    w = rng.integers(0, 4, size=(3, n)).astype(float)
    w[:, :2] = 1.0  # keep both classes in every replicate
    auc = weighted_roc_auc(y, p, w)
    ap = weighted_average_precision(y, p, w)
    for b in range(3):
        rep = np.repeat(np.arange(n), w[b].astype(int))
        assert auc[b] == pytest.approx(roc_auc_score(y[rep], p[rep]))
        assert ap[b] == pytest.approx(average_precision_score(y[rep], p[rep]))
    assert weighted_roc_auc(y, p)[0] == pytest.approx(roc_auc_score(y, p))


def test_user_bootstrap_resamples_users_not_rows() -> None:
    users = np.array(["a", "a", "a", "b", "c", "c"])
    w = user_bootstrap_weights(users, 500, seed=3)
    assert w.shape == (500, 6)
    assert (w[:, 0] == w[:, 1]).all() and (w[:, 1] == w[:, 2]).all() and (w[:, 4] == w[:, 5]).all()
    per_user = w[:, [0, 3, 4]]
    assert (per_user.sum(axis=1) == 3).all()  # as many users drawn as there are users
    assert (user_bootstrap_weights(users, 500, seed=3) == w).all()


def test_user_bootstrap_intervals_are_wider_when_rows_repeat_users() -> None:
    """Copies of the same users do not make an AUC more certain: a row bootstrap would say they do."""
    y, p = _scores(400, seed=5)
    y10, p10 = np.tile(y, 10), np.tile(p, 10)
    users = np.tile(np.arange(400), 10)
    by_user = classification_metrics(
        y10, p10, 0.5, users=users, weights=user_bootstrap_weights(users, 300, 1)
    )
    by_row = classification_metrics(
        y10, p10, 0.5, users=np.arange(4000), weights=user_bootstrap_weights(np.arange(4000), 300, 1)
    )
    width = {k: m["roc_auc_ci"][1] - m["roc_auc_ci"][0] for k, m in (("u", by_user), ("r", by_row))}
    assert width["u"] > 2.5 * width["r"]


def test_paired_comparison_sees_a_real_gain_and_no_gain_in_a_copy() -> None:
    y, p = _scores(1500, seed=2)
    noisy = np.clip(p + np.random.default_rng(0).normal(0, 0.3, len(p)), 0, 1)
    users = np.arange(len(y))
    w = user_bootstrap_weights(users, 400, seed=0)
    better = paired_comparison(y, p, noisy, w)
    assert better["difference"] > 0 and better["difference_ci"][0] > 0 and better["p_a_not_better"] < 0.01
    same = paired_comparison(y, p, p, w)
    assert same["difference"] == 0 and same["p_a_not_better"] == 1.0 and same["ratio"] == pytest.approx(1.0)


def test_calibrators_fix_a_miscalibrated_score() -> None:
    y, p = _scores(4000, seed=7)
    skewed = p**2.5  # under-confident for churners
    assert expected_calibration_error(y, skewed, 10) > 0.1
    for method in ("platt", "isotonic"):
        cal = fit_calibrator(y, skewed, method)
        fixed = cal.apply(skewed)
        assert expected_calibration_error(y, fixed, 10) < 0.03, method
        assert np.all(np.diff(cal.apply(np.linspace(0, 1, 101))) >= -1e-12)  # monotone
        assert Calibrator.from_dict(cal.to_dict()) == cal  # round trip through model_meta.json
    platt = fit_calibrator(y, skewed, "platt")
    assert roc_auc_score(y, platt.apply(skewed)) == pytest.approx(roc_auc_score(y, skewed))
    assert fit_calibrator(y, skewed, "none").apply(skewed) is not None
    with pytest.raises(ValueError, match="one class"):
        fit_calibrator(np.zeros(10), np.linspace(0, 1, 10), "platt")


def test_operating_point_is_chosen_on_the_given_rows_and_break_even_follows_the_costs() -> None:
    cfg = EvaluateConfig(value_per_retained_user=100.0, intervention_cost=10.0, intervention_success_rate=0.5)
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    p = np.linspace(1, 0, 10)
    op = choose_operating_point(y, p, EvaluateConfig(**{**cfg.__dict__, "business_points": 10}))
    assert op.best_share == pytest.approx(0.2) and op.validation_net_value == pytest.approx(80)
    assert op.best_share_threshold == pytest.approx(p[1])
    assert op.break_even_probability == pytest.approx(10 / (0.5 * 100))


def test_ece_detects_miscalibration() -> None:
    y, p = _scores()
    assert expected_calibration_error(y, p**3, 10) > 0.1 > expected_calibration_error(y, p, 10)


@settings(max_examples=30, deadline=None)
@given(st.integers(20, 400), st.integers(0, 10_000))
def test_lift_and_capture_properties(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    y[0], y[1] = 0, 1
    p = rng.random(n)
    assert capture_at(y, p, 1.0) == pytest.approx(1.0)
    assert lift_at(y, p, 1.0) == pytest.approx(1.0)
    assert 0.0 <= capture_at(y, p, 0.25) <= capture_at(y, p, 0.5) <= 1.0
    perfect = y.astype(float)  # a perfect ranker captures min(1, share / base rate) of churners
    share = 0.1
    k = int(np.ceil(share * n))
    assert capture_at(y, perfect, share) == pytest.approx(min(k, y.sum()) / y.sum())


def test_business_curve_arithmetic() -> None:
    cfg = EvaluateConfig(value_per_retained_user=100.0, intervention_cost=10.0, intervention_success_rate=0.5)
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    p = np.linspace(1, 0, 10)
    curve = business_curve(y, p, cfg, n_points=10)
    row = curve.filter(curve["share_targeted"] == 0.2).row(0, named=True)
    assert row["n_targeted"] == 2 and row["churners_reached"] == 2
    assert row["net_value"] == pytest.approx(2 * 0.5 * 100 - 2 * 10)
    assert row["roi"] == pytest.approx(80 / 20)
    summary = business_summary(curve, 0.2)
    assert summary["net_value_top_k"] == pytest.approx(80)
    assert "best_share" not in summary  # the best share is chosen on validation, never on test


def test_leakage_audit_flags_a_label_copy() -> None:
    y, p = _scores(500)
    x = np.column_stack([y + 0.001 * np.random.default_rng(0).random(500), p, np.ones(500)])
    audit = single_feature_aucs(x, y, ["leak", "score", "constant"], 0.97)
    assert audit["feature"].to_list() == ["leak", "score", "constant"]
    assert audit["flagged"].to_list() == [True, False, False]
    inverted = single_feature_aucs(-x, y, ["leak", "score", "constant"], 0.97)
    assert inverted.filter(inverted["feature"] == "score")["direction"][0] == -1


def test_plot_tables_have_dvc_columns() -> None:
    y, p = _scores(300)
    assert plots.roc_table(y, p).columns[:2] == ["fpr", "tpr"]
    assert plots.pr_table(y, p).columns == ["recall", "precision"]
    cal = plots.calibration_frame(y, p, 10)
    assert cal.columns[:2] == ["mean_predicted", "fraction_positive"] and cal["count"].sum() == 300
    lift = plots.lift_table(y, p)
    assert lift["capture_rate"][-1] == pytest.approx(1.0) and lift.columns[:2] == [
        "share_targeted",
        "capture_rate",
    ]
    conf = plots.confusion_table(y, p, 0.5)
    assert conf.columns == ["actual", "predicted"] and conf.height == 300


def test_single_class_test_set_fails_clearly() -> None:
    with pytest.raises(ValueError, match="single class"):
        check_binary(np.zeros(10))
    with pytest.raises(ValueError, match="0/1"):
        check_binary(np.array([0, 2]))
