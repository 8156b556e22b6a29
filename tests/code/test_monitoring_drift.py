"""Profiles, the reference, per-column tests and one whole check, on synthetic clustered rows."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from churnflow.config import EvaluateConfig, MonitorConfig
from churnflow.monitoring.check import run_check
from churnflow.monitoring.drift import ProfileMatrix, column_tests, correct
from churnflow.monitoring.profile import DriftInputError, code_matrix, profile_column
from churnflow.monitoring.reference import build_reference, profiles_of, validate_reference
from tests.code.monitor_synthetic import DAY0, FEATURES, clustered_rows, current, score, with_labels

CFG = MonitorConfig(calibration_splits=20, domain_splits=2, domain_rows=600, performance_draws=100)
BUSINESS = EvaluateConfig()


def _reference(n_users: int = 300, seed: int = 1, cfg: MonitorConfig = CFG) -> dict:
    ref = clustered_rows(n_users, seed)
    held = with_labels(clustered_rows(120, seed + 100, prefix="h"), seed)
    return build_reference(ref, FEATURES, DAY0, held, score(held), cfg, BUSINESS, seed=42)


@pytest.fixture(scope="module")
def reference() -> dict:
    return _reference()


# ------------------------------------------------------------------------------------------- profiles
def test_numeric_profile_is_exact_with_few_values_and_a_sketch_with_many() -> None:
    cfg = MonitorConfig(sketch_points=50, psi_bins=10)
    few = profile_column(pl.Series("x", [1.0, 2.0, 2.0, 3.0, None, float("nan")]), cfg)
    assert few.support == [1.0, 2.0, 3.0] and few.counts == [1.0, 2.0, 1.0] and few.null_count == 2.0
    assert few.discrete  # 3 distinct values <= discrete_max_values
    values = np.random.default_rng(0).gamma(2.0, 3.0, 5000)
    many = profile_column(pl.Series("y", values), cfg)
    assert len(many.support) <= 50 and not many.discrete
    assert many.support[0] == values.min() and many.support[-1] == values.max()
    assert sum(many.counts) == 5000
    assert set(many.edges) <= set(many.support) and len(many.edges) == many.n_coarse - 1
    # coarse bins hold about a tenth of the rows each
    coarse = many.coarse_counts(many.full_counts())[1:]
    assert coarse.min() > 300 and coarse.max() < 700


def test_codes_follow_the_full_layout() -> None:
    prof = profile_column(pl.Series("x", [1.0, 2.0, 3.0]), CFG)
    codes = code_matrix(pl.DataFrame({"x": [0.5, 1.0, 2.5, 3.0, 9.0, None]}), [prof])[:, 0]
    assert codes.tolist() == [1, 1, 2, 3, 3, 0]  # below min → first cell, floor within, null → 0
    cat = profile_column(pl.Series("c", ["a", "a", "b", None]), replace(CFG, max_categories=1))
    assert cat.support == ["a"] and cat.counts == [2.0, 1.0]  # "b" went to __other__
    assert code_matrix(pl.DataFrame({"c": ["a", "z", None]}), [cat])[:, 0].tolist() == [1, 2, 0]
    with pytest.raises(DriftInputError, match="'x'"):
        code_matrix(pl.DataFrame({"y": [1.0]}), [prof])


# ------------------------------------------------------------------------------------------ reference
def test_reference_is_deterministic_and_order_free(reference: dict) -> None:
    ref = clustered_rows(300, 1)
    held = with_labels(clustered_rows(120, 101, prefix="h"), 1)
    again = build_reference(ref.reverse(), FEATURES, DAY0, held, score(held), CFG, BUSINESS, seed=42)
    assert json.dumps(again, sort_keys=True) == json.dumps(reference, sort_keys=True)
    assert reference["offsets_days"] == [7, 10, 13, 16]
    assert reference["n_users"] == 300 and reference["n_rows"] == 1200
    assert reference["score"]["rows"] == "held_out_users" and reference["score"]["n_users"] == 120
    assert set(reference["columns"]) == set(FEATURES)


def test_reference_validation_names_the_problem(reference: dict) -> None:
    broken = {k: v for k, v in reference.items() if k != "domain"}
    with pytest.raises(DriftInputError, match="'domain'"):
        validate_reference(broken)
    with pytest.raises(DriftInputError, match="version"):
        validate_reference({**reference, "version": 1})
    with pytest.raises(DriftInputError, match="no profile for feature 'ghost'"):
        validate_reference({**reference, "feature_names": [*reference["feature_names"], "ghost"]})


def test_every_column_has_calibrated_null_laws(reference: dict) -> None:
    for prof in profiles_of(reference):
        expected = {"psi", "jensenshannon"} | (
            {"ks", "wasserstein"} if not prof.tests_as_categorical() else set()
        )
        assert set(prof.null_laws) == expected, prof.name
        assert prof.null_laws["psi"].scale > 0


# -------------------------------------------------------------------------------------------- tests
def _check(reference: dict, frame: pl.DataFrame, cfg: MonitorConfig = CFG):
    profiles = profiles_of(reference)
    codes = code_matrix(frame, profiles)
    cols = column_tests(profiles, codes, reference["n_users"], frame["user_id"].n_unique(), cfg)
    return {c.name: c for c in correct(cols, cfg)}


def test_small_windows_use_ks_and_chi2_with_users_as_sample_sizes(reference: dict) -> None:
    cols = _check(reference, clustered_rows(150, 7))
    assert cols["activity__listen_hours_7d"].test == "ks"
    assert cols["content__ua_mobile"].test == "chi2" and cols["profile__plan"].test == "chi2"
    assert cols["content__ua_mobile"].kind == "discrete" and cols["profile__plan"].kind == "categorical"
    assert all(c.floor is None for c in cols.values())


def test_no_drift_rarely_alarms_on_clustered_rows(reference: dict) -> None:
    """20 fresh samples from the same generator (users repeated at 4 cutoffs): few false alarms, while
    treating rows as independent would reject far more often on the per-user flag."""
    windows_with_drift, naive_rejections = 0, 0
    for seed in range(200, 220):
        frame = clustered_rows(150, seed)
        cols = _check(reference, frame)
        windows_with_drift += any(c.drift for c in cols.values())
        rows_as_users = column_tests(
            profiles_of(reference)[2:3],
            code_matrix(frame, profiles_of(reference)[2:3]),
            1200,
            frame.height,
            CFG,
        )[0]
        naive_rejections += rows_as_users.p_value < 0.05
    assert windows_with_drift <= 2
    assert naive_rejections > windows_with_drift


def test_a_shift_is_found_in_the_shifted_features_only(reference: dict) -> None:
    cols = _check(reference, clustered_rows(150, 300, shift=0.5))
    drifting = {n for n, c in cols.items() if c.drift}
    assert {"activity__listen_hours_7d", "activity__songs_7d"} <= drifting
    assert "profile__plan" not in drifting and "content__ua_mobile" not in drifting
    flag = _check(reference, clustered_rows(150, 301, flag_share=0.6))
    assert flag["content__ua_mobile"].drift and flag["content__ua_mobile"].null_share_current == 0.0


def test_large_windows_need_the_effect_floor() -> None:
    big = replace(CFG, large_window_users=100)
    reference = _reference(n_users=2000, cfg=big)
    small_shift = _check(reference, clustered_rows(4000, 400, shift=0.05), big)
    col = small_shift["activity__listen_hours_7d"]
    assert col.test == "wasserstein" and col.floor == big.wasserstein_floor
    assert col.p_adjusted < 0.01 and col.effect_value < col.floor and not col.drift  # certain, but small
    strong = _check(reference, clustered_rows(4000, 401, shift=0.5), big)["activity__listen_hours_7d"]
    assert strong.drift and strong.effect_value > big.wasserstein_floor
    none = _check(reference, clustered_rows(4000, 402), big)
    assert not any(c.drift for c in none.values())
    as_psi = _check(reference, clustered_rows(4000, 401, shift=0.5), replace(big, numeric_effect="psi"))
    assert as_psi["activity__listen_hours_7d"].test == "psi" and as_psi["activity__listen_hours_7d"].drift


def test_effects_of_identical_counts_are_zero(reference: dict) -> None:
    pm = ProfileMatrix.of(profiles_of(reference))
    effects = pm.effects(pm.reference, pm.reference * 3, 1e-4)
    for name in ("psi", "jensenshannon"):
        assert np.allclose(effects[name], 0.0, atol=1e-7)
    assert np.allclose(np.nan_to_num(effects["ks"]), 0.0) and np.allclose(
        np.nan_to_num(effects["wasserstein"]), 0.0
    )


# ---------------------------------------------------------------------------------------- whole check
def test_check_without_drift_is_ok_and_serialises(reference: dict) -> None:
    result, state = run_check(reference, current(clustered_rows(150, 500)), CFG, BUSINESS, seed=1)
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["status"] == "ok" and not payload["alerts"] and state == {}
    assert payload["summary"]["n_features"] == len(FEATURES)
    assert payload["domain_classifier"]["auc"] < payload["domain_classifier"]["threshold"]
    assert len(payload["performance"]) == 4 and all(w["labelled"] for w in payload["performance"])


def test_check_with_drift_alerts_with_severity(reference: dict) -> None:
    result, state = run_check(reference, current(clustered_rows(150, 501, shift=0.6)), CFG, BUSINESS, seed=1)
    kinds = {a.kind: a.severity for a in result.alerts}
    assert kinds["feature_drift"] == "critical"  # 2 of 5 features ≥ drift_share_critical
    assert "multivariate_drift" in kinds and result.status == "critical"
    assert "score_drift" in kinds  # the score reads the shifted count
    assert set(state) == set(kinds)
    assert result.drifting[0].name.startswith("activity__")


def test_check_names_missing_offsets_and_columns(reference: dict) -> None:
    rows = current(clustered_rows(50, 502)).with_columns(in_reference=pl.lit(False))
    with pytest.raises(DriftInputError, match="no cutoff offset in common"):
        run_check(reference, rows, CFG, BUSINESS, seed=1)
    with pytest.raises(DriftInputError, match="churn_probability"):
        run_check(
            reference, current(clustered_rows(50, 503)).drop("churn_probability"), CFG, BUSINESS, seed=1
        )


def test_label_shift_compares_realised_churn_with_the_reference_at_the_same_offsets() -> None:
    ref_rows = with_labels(clustered_rows(600, 7), seed=7)
    held = with_labels(clustered_rows(120, 107, prefix="h"), 7)
    reference = build_reference(ref_rows, FEATURES, DAY0, held, score(held), CFG, BUSINESS, seed=42)
    by_offset = reference["labels"]["by_offset"]
    assert sum(v["rows"] for v in by_offset.values()) == ref_rows.height
    assert sum(v["positives"] for v in by_offset.values()) == int(ref_rows["label"].sum())
    window = clustered_rows(600, 508)
    same, _ = run_check(reference, current(window, seed=3), CFG, BUSINESS, seed=1)
    assert "label_shift" not in {a.kind for a in same.alerts}
    # the same customers, scored the same, churn more: the features and the score cannot see it
    risen = np.minimum(score(window) + 0.2, 1.0)
    shifted, _ = run_check(reference, current(window, seed=3, p=risen), CFG, BUSINESS, seed=1)
    kinds = {a.kind for a in shifted.alerts}
    assert "label_shift" in kinds and "feature_drift" not in kinds
    rates = [(w.realised_positive_rate, w.reference_positive_rate) for w in shifted.performance]
    assert all(now > then + 0.1 for now, then in rates)
