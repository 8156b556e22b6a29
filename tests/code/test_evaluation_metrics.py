"""Evaluation maths: thresholds, metrics, calibration, lift/capture, business curve, leakage audit, tables."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from churnflow.config import EvaluateConfig
from churnflow.evaluation import plots
from churnflow.evaluation.business import business_curve, business_summary
from churnflow.evaluation.leakage import single_feature_aucs
from churnflow.evaluation.metrics import (
    capture_at,
    check_binary,
    classification_metrics,
    expected_calibration_error,
    lift_at,
)
from churnflow.evaluation.thresholds import choose_threshold


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
    m = classification_metrics(y, p, 0.5, bootstrap_samples=200, seed=1)
    for key in ("roc_auc", "roc_auc_ci", "pr_auc", "log_loss", "brier", "ece", "f1", "precision", "recall"):
        assert key in m
    for key in ("threshold", "lift_at_10", "lift_at_25", "capture_at_25"):
        assert key in m
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    lo, hi = m["roc_auc_ci"]
    assert lo < m["roc_auc"] < hi and hi - lo < 0.1
    assert m["ece"] < 0.05  # calibrated scores
    assert m == classification_metrics(y, p, 0.5, bootstrap_samples=200, seed=1)  # deterministic


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
    assert summary["best_share"] == pytest.approx(0.2) and summary["net_value_top_k"] == pytest.approx(80)


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
