"""PSI, drift reference and drift check on synthetic frames (no pipeline outputs needed)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnflow.config import MonitorConfig
from churnflow.monitoring.drift import (
    SCORE_NAME,
    DriftInputError,
    build_drift_reference,
    check_drift,
    current_shares,
    cutoffs_from_meta,
    importance_from_model,
    latest_cutoffs,
    monitoring_cutoffs,
    psi,
    psi_status,
    select_monitored_features,
    select_reference_rows,
    select_score_rows,
)

CFG = MonitorConfig()
FEATURES = ["engagement__songs_7d", "engagement__thumbs_down_28d", "profile__level", "usage__session_len"]
CUTOFFS = [datetime(2024, 10, 1, tzinfo=UTC) + timedelta(days=7 * i) for i in range(4)]


def synthetic_features(n: int, seed: int, shift: float = 0.0) -> pl.DataFrame:
    """Count-like, skewed, categorical and nullable features; ``shift`` moves every numeric one."""
    rng = np.random.default_rng(seed)
    paid = min(shift, 1.0)
    session = rng.gamma(2.0, 10.0, n) + 10 * shift
    session[rng.random(n) < 0.1] = np.nan
    return pl.DataFrame(
        {
            "user_id": [f"u{i:05d}" for i in range(n)],
            "cutoff": pl.Series([CUTOFFS[i % len(CUTOFFS)] for i in range(n)]).cast(pl.Datetime("ms", "UTC")),
            "engagement__songs_7d": rng.poisson(20 * (1 + shift), n),
            "engagement__thumbs_down_28d": rng.poisson(0.5 + shift, n),
            "profile__level": rng.choice(["free", "paid"], n, p=[0.6 - 0.3 * paid, 0.4 + 0.3 * paid]),
            "usage__session_len": session,
        }
    )


def scores_for(frame: pl.DataFrame) -> np.ndarray:
    """A deterministic 'model': more thumbs down and fewer songs → higher churn probability."""
    z = 0.8 * frame["engagement__thumbs_down_28d"].to_numpy() - 0.1 * frame["engagement__songs_7d"].to_numpy()
    return 1.0 / (1.0 + np.exp(-z))


@pytest.fixture(scope="module")
def reference() -> dict:
    frame = synthetic_features(4000, seed=1)
    return build_drift_reference(frame, scores_for(frame), CFG, FEATURES)


# ----------------------------------------------------------------------------------------------- PSI
def test_psi_of_identical_shares_is_zero() -> None:
    shares = np.array([0.1, 0.2, 0.3, 0.4])
    assert psi(shares, shares, CFG.psi_epsilon) == pytest.approx(0.0, abs=1e-12)


def test_psi_known_value() -> None:
    ref, cur = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    expected = (0.25 - 0.5) * np.log(0.25 / 0.5) + (0.75 - 0.5) * np.log(0.75 / 0.5)
    assert psi(ref, cur, CFG.psi_epsilon) == pytest.approx(expected)


def test_psi_empty_bin_stays_finite() -> None:
    value = psi(np.array([0.0, 1.0]), np.array([0.5, 0.5]), 1e-4)
    assert np.isfinite(value) and value > 1.0


shares_vectors = st.integers(min_value=2, max_value=12).flatmap(
    lambda k: st.tuples(
        st.lists(st.floats(0, 1, allow_nan=False), min_size=k, max_size=k),
        st.lists(st.floats(0, 1, allow_nan=False), min_size=k, max_size=k),
    )
)


@settings(max_examples=200, deadline=None)
@given(shares_vectors, st.floats(1e-8, 1e-2))
def test_psi_is_never_negative(pair: tuple[list[float], list[float]], epsilon: float) -> None:
    ref, cur = (np.array(v) for v in pair)
    ref, cur = ref / max(ref.sum(), 1e-12), cur / max(cur.sum(), 1e-12)
    assert psi(ref, cur, epsilon) >= 0.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=5, max_size=200))
def test_reference_against_itself_is_ok(values: list[float]) -> None:
    frame = pl.DataFrame({"x": values})
    ref = build_drift_reference(frame, np.full(len(values), 0.5), CFG, ["x"])
    report = check_drift(ref, frame, np.full(len(values), 0.5), CFG)
    assert report.features[0].psi == pytest.approx(0.0, abs=1e-9)
    assert report.status == "ok"


def test_psi_status_thresholds() -> None:
    assert psi_status(0.0, CFG) == "ok"
    assert psi_status(CFG.psi_warn, CFG) == "warn"
    assert psi_status(CFG.psi_alert, CFG) == "alert"


# ------------------------------------------------------------------------------------------ reference
def test_reference_layout(reference: dict) -> None:
    assert reference["feature_names"] == FEATURES
    songs = reference["features"]["engagement__songs_7d"]
    assert songs["kind"] == "numeric"
    assert len(songs["shares"]) == len(songs["edges"]) + 1 <= CFG.psi_bins
    assert sum(songs["shares"]) == pytest.approx(1.0)
    assert songs["edges"] == sorted(set(songs["edges"]))
    session = reference["features"]["usage__session_len"]
    assert 0.05 < session["null_share"] < 0.15
    level = reference["features"]["profile__level"]
    assert level["kind"] == "categorical" and level["categories"] == ["free", "paid"]
    assert reference["score"]["kind"] == "numeric"


def test_quantile_bins_are_roughly_equal_for_continuous_data() -> None:
    frame = pl.DataFrame({"x": np.random.default_rng(3).normal(size=10_000)})
    bins = build_drift_reference(frame, np.zeros(10_000), CFG, ["x"])["features"]["x"]
    assert len(bins["shares"]) == CFG.psi_bins
    assert max(bins["shares"]) - min(bins["shares"]) < 0.01


def test_reference_is_deterministic_and_row_order_free() -> None:
    frame = synthetic_features(3000, seed=5)
    a = build_drift_reference(frame, scores_for(frame), CFG, FEATURES)
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=9)
    b = build_drift_reference(shuffled, scores_for(shuffled), CFG, FEATURES)
    dump = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
    assert dump(a) == dump(b)
    assert dump(a) == dump(build_drift_reference(frame, scores_for(frame), CFG, FEATURES))


def test_reference_json_round_trip(reference: dict) -> None:
    frame = synthetic_features(1000, seed=2)
    again = json.loads(json.dumps(reference))
    assert check_drift(again, frame, scores_for(frame), CFG) == check_drift(
        reference, frame, scores_for(frame), CFG
    )


# ------------------------------------------------------------------------------------------ check
def test_same_distribution_is_ok(reference: dict) -> None:
    frame = synthetic_features(4000, seed=2)
    report = check_drift(reference, frame, scores_for(frame), CFG)
    assert report.status == "ok", [(f.name, f.psi) for f in report.features]
    assert all(f.psi < 0.05 for f in report.features)
    assert report.counts() == {"ok": len(FEATURES), "warn": 0, "alert": 0}


def test_shifted_distribution_alerts(reference: dict) -> None:
    frame = synthetic_features(4000, seed=2, shift=1.0)
    report = check_drift(reference, frame, scores_for(frame), CFG)
    by_name = {f.name: f for f in report.features}
    assert report.status == "alert"
    assert by_name["engagement__songs_7d"].psi > 1.0
    assert by_name["profile__level"].status in {"warn", "alert"}
    assert report.score.name == SCORE_NAME and report.score.status == "alert"


def test_status_follows_thresholds(reference: dict) -> None:
    frame = synthetic_features(4000, seed=2, shift=0.15)
    loose = replace(CFG, psi_warn=50.0, psi_alert=100.0)
    assert check_drift(reference, frame, scores_for(frame), loose).status == "ok"
    strict = replace(CFG, psi_warn=1e-6, psi_alert=1e-5)
    assert check_drift(reference, frame, scores_for(frame), strict).status == "alert"


def test_more_nulls_is_drift(reference: dict) -> None:
    frame = synthetic_features(4000, seed=2).with_columns(usage__session_len=pl.lit(None, dtype=pl.Float64))
    report = check_drift(reference, frame, scores_for(frame), CFG)
    session = next(f for f in report.features if f.name == "usage__session_len")
    assert session.null_share_current == 1.0
    assert session.status == "alert"


def test_unseen_category_goes_to_other(reference: dict) -> None:
    frame = synthetic_features(500, seed=2).with_columns(profile__level=pl.lit("family"))
    shares = current_shares(frame["profile__level"], reference["features"]["profile__level"])
    assert shares.tolist() == [0.0, 0.0, 1.0, 0.0]


def test_report_dict_is_json_and_sorted_by_psi(reference: dict) -> None:
    frame = synthetic_features(2000, seed=2, shift=0.5)
    payload = json.loads(json.dumps(check_drift(reference, frame, scores_for(frame), CFG).to_dict()))
    psis = [f["psi"] for f in payload["features"].values()]
    assert psis == sorted(psis, reverse=True)
    assert set(payload) >= {"status", "features", "score", "thresholds", "counts", "n_rows"}
    assert payload["median_feature_psi"] == pytest.approx(float(np.median(psis)))
    assert all(f["status"] in {"ok", "warn", "alert"} for f in payload["features"].values())


# ------------------------------------------------------------------------------------------ bad input
def test_missing_feature_is_named(reference: dict) -> None:
    frame = synthetic_features(100, seed=2).drop("profile__level")
    with pytest.raises(DriftInputError, match="profile__level"):
        check_drift(reference, frame, scores_for(frame), CFG)


def test_misaligned_scores_fail(reference: dict) -> None:
    frame = synthetic_features(100, seed=2)
    with pytest.raises(DriftInputError, match="scores"):
        check_drift(reference, frame, np.zeros(99), CFG)


def test_bad_reference_names_the_key(reference: dict) -> None:
    broken = {k: v for k, v in reference.items() if k != "score"}
    with pytest.raises(DriftInputError, match="'score'"):
        check_drift(broken, synthetic_features(10, seed=2), np.zeros(10), CFG)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("psi_bins", 1),
        ("psi_warn", 0.5),
        ("psi_epsilon", 0.0),
        ("reference_split", "test"),
        ("score_rows", "all"),
        ("cutoff", "now"),
    ],
)
def test_bad_config_names_the_field(field: str, value: object) -> None:
    frame = synthetic_features(10, seed=2)
    with pytest.raises(DriftInputError, match=f"monitor.{field}"):
        build_drift_reference(frame, np.zeros(10), replace(CFG, **{field: value}), FEATURES)


# ------------------------------------------------------------------------------------------ helpers
def test_select_monitored_features_by_importance() -> None:
    names = ["a", "b", "c", "d"]
    assert select_monitored_features(names, {"c": 3.0, "a": 1.0, "b": 3.0}, 3) == ["b", "c", "a"]
    assert select_monitored_features(names, None, 2) == names


def test_reference_rows_leave_out_test_cutoffs() -> None:
    frame = synthetic_features(400, seed=1)
    test = latest_cutoffs(frame, 1)
    assert test == [CUTOFFS[-1]]
    kept = select_reference_rows(frame, test, CFG)
    assert kept.height == 300 and CUTOFFS[-1] not in kept["cutoff"].to_list()
    assert select_reference_rows(frame, test, replace(CFG, reference_split="all")).height == 400


def test_score_rows_are_the_test_cutoffs_by_default() -> None:
    frame = synthetic_features(400, seed=1)
    test = latest_cutoffs(frame, 1)
    rows = select_score_rows(frame, test, CFG)
    assert rows.height == 100 and set(rows["cutoff"].to_list()) == {CUTOFFS[-1]}
    assert select_score_rows(frame, test, replace(CFG, score_rows="reference")).height == 300
    with pytest.raises(DriftInputError, match="test cutoffs"):
        select_score_rows(frame, [], CFG)


def test_score_sample_need_not_align_with_feature_rows() -> None:
    frame = synthetic_features(400, seed=1)
    ref = build_drift_reference(frame, np.linspace(0, 1, 57), CFG, FEATURES)
    assert ref["score"]["n"] == 57 and ref["n_rows"] == 400
    with pytest.raises(DriftInputError, match="scores"):
        build_drift_reference(frame, np.array([0.5, 1.5]), CFG, FEATURES)


def test_cutoffs_from_meta_reads_both_layouts() -> None:
    iso = CUTOFFS[-1].isoformat()
    assert cutoffs_from_meta({"test_cutoffs": [iso]}) == [CUTOFFS[-1]]
    assert cutoffs_from_meta({"cutoffs": {"test": [iso]}}) == [CUTOFFS[-1]]
    assert cutoffs_from_meta({}) is None


def test_importance_from_lightgbm_booster() -> None:
    lgb = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 3))
    y = (x[:, 2] > 0).astype(int)
    booster = lgb.train({"verbose": -1, "seed": 1, "deterministic": True}, lgb.Dataset(x, y), 5)
    importance = importance_from_model({}, booster, ["a", "b", "c"])
    assert importance is not None and max(importance, key=importance.__getitem__) == "c"
    assert importance_from_model({"feature_importance": {"a": 1}}, booster, ["a"]) == {"a": 1.0}
    assert importance_from_model({}, object(), ["a"]) is None


def test_monitoring_cutoffs_are_one_ms_after_the_last_event() -> None:
    ts = [datetime(2024, 1, d, tzinfo=UTC) for d in (1, 5, 3)]
    events = pl.DataFrame({"user_id": ["b", "b", "a"], "ts": ts}).cast({"ts": pl.Datetime("ms", "UTC")})
    one_ms = timedelta(milliseconds=1)
    own = monitoring_cutoffs(events, "user_last_event")
    assert own["user_id"].to_list() == ["a", "b"]
    assert own["cutoff"].to_list() == [ts[2] + one_ms, ts[1] + one_ms]
    assert own.schema["cutoff"] == events.schema["ts"]
    common = monitoring_cutoffs(events, "export_end")
    assert common["user_id"].to_list() == ["a", "b"]
    assert common["cutoff"].to_list() == [ts[1] + one_ms, ts[1] + one_ms]
    assert common.schema["cutoff"] == events.schema["ts"]
    with pytest.raises(DriftInputError, match=r"monitor\.cutoff"):
        monitoring_cutoffs(events, "yesterday")


def test_export_end_keeps_only_users_the_training_population_would_hold() -> None:
    day = timedelta(days=1)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    events = pl.DataFrame(
        {
            "user_id": ["active", "active", "cancelled", "cancelled", "gone"],
            "ts": [start, start + 30 * day, start + 20 * day, start + 29 * day, start + 2 * day],
            "page": ["NextSong", "NextSong", "NextSong", "Cancellation Confirmation", "Home"],
        }
    ).cast({"ts": pl.Datetime("ms", "UTC")})
    assert monitoring_cutoffs(events, "export_end", active_days=21)["user_id"].to_list() == ["active"]
    assert monitoring_cutoffs(events, "export_end")["user_id"].to_list() == ["active", "gone"]
    assert monitoring_cutoffs(events, "user_last_event").height == 3
    with pytest.raises(DriftInputError, match="cancelled or went inactive"):
        monitoring_cutoffs(events.filter(pl.col("user_id") == "cancelled"), "export_end", active_days=1)
