"""The Monte-Carlo oracle on the tiny world: determinism, the latent state it reads (and the future it must
not read), the project's label rules, the engine pieces it shares with the world, latent-state features."""

from __future__ import annotations

import warnings
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from churnflow.config.labels import LabelsConfig
from churnflow.labels import build_labels
from churnflow.simulate import (
    OracleResult,
    latent_state_features,
    load_ground_truth,
    oracle_probabilities,
    simulate_to_dir,
)
from churnflow.simulate import oracle as oracle_module
from churnflow.simulate.calibration import read_events
from churnflow.simulate.engine import _iter_chunks, build_world, catalogue_for
from churnflow.simulate.oracle import _last_event_offset_s, _song_seconds
from churnflow.simulate.presets import DAY_MS, get_regime
from churnflow.simulate.world import SESSION_FINAL, draw_gap_beyond, session_start_ms

UTC_MS = pl.Datetime("ms", "UTC")
CFG = LabelsConfig()


def label_events(raw: pl.DataFrame) -> pl.DataFrame:
    """The columns the label function reads, from raw simulated events (as the loader names them)."""
    return (
        raw.filter(pl.col("userId") != "")
        .select(
            pl.col("userId").alias("user_id"),
            pl.col("ts").cast(UTC_MS),
            "page",
            pl.col("registration").cast(UTC_MS),
        )
        .sort("user_id", "ts")
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(truth, label-function events, labels) of tiny seed 11."""
    out = tmp_path_factory.mktemp("tiny_oracle")
    summary = simulate_to_dir("tiny", 11, out, progress=False)
    truth = load_ground_truth(out)
    assert truth is not None
    events = label_events(read_events(summary.events_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = build_labels(events, CFG).labels
    return truth, events, labels


def _keys(labels: pl.DataFrame) -> pl.DataFrame:
    return labels.select("user_id", "cutoff")


def test_result_shape_determinism_and_mc_error(tiny: tuple[pl.DataFrame, ...]) -> None:
    truth, _, labels = tiny
    keys = _keys(labels)
    a = oracle_probabilities(truth, keys, CFG, n_draws=40, seed=3)
    b = oracle_probabilities(truth, keys, CFG, n_draws=40, seed=3)
    c = oracle_probabilities(truth, keys, CFG, n_draws=40, seed=4)
    assert isinstance(a, OracleResult) and isinstance(b, OracleResult) and isinstance(c, OracleResult)
    assert a.table.columns == ["user_id", "cutoff", "p", "se"]
    assert a.table.select("user_id", "cutoff").equals(keys)
    assert a.table.equals(b.table), "same seed, different probabilities"
    assert not a.table.equals(c.table)
    assert a.table["p"].null_count() == 0, "every label row is eligible, so every row gets a probability"
    p, se = a.table["p"].to_numpy(), a.table["se"].to_numpy()
    assert ((p >= 0) & (p <= 1)).all()
    assert np.allclose(se, np.sqrt(p * (1 - p) / 39))
    assert a.summary["n_draws"] == 40 and a.summary["rows_scored"] == keys.height
    assert a.summary["mean_mc_se"] == pytest.approx(se.mean())


def test_the_thread_count_does_not_change_a_byte(
    tiny: tuple[pl.DataFrame, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    truth, _, labels = tiny
    keys = _keys(labels)
    monkeypatch.setattr(oracle_module, "_BLOCK_PSEUDO_USERS", 20 * 16)  # blocks of 16 rows at 20 draws
    one = oracle_probabilities(truth, keys, CFG, n_draws=20, seed=5, n_threads=1)
    three = oracle_probabilities(truth, keys, CFG, n_draws=20, seed=5, n_threads=3)
    assert isinstance(one, OracleResult) and isinstance(three, OracleResult)
    assert keys.height > 3 * 16  # several blocks per thread
    assert one.table.equals(three.table)


def test_rows_that_are_not_eligible_get_no_probability(tiny: tuple[pl.DataFrame, ...]) -> None:
    truth, _, labels = tiny
    cancelled = truth.filter(pl.col("churn_kind") == "cancel").sort("churn_ts").row(0, named=True)
    after = cancelled["churn_ts"].replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=2)
    newcomer = truth.filter(pl.col("reg_day") > 20).sort("reg_day").row(0, named=True)
    before_reg = newcomer["registration"].replace(hour=0, minute=0, second=0, microsecond=0)
    keys = pl.DataFrame(
        {
            "user_id": [cancelled["user_id"], newcomer["user_id"], labels["user_id"][0]],
            "cutoff": pl.Series([after, before_reg, labels["cutoff"][0]], dtype=UTC_MS),
        }
    )
    res = oracle_probabilities(truth, keys, CFG, n_draws=10, seed=0)
    assert isinstance(res, OracleResult)
    assert res.table["p"].to_list()[:2] == [None, None]
    assert res.table["p"][2] is not None


def test_the_future_after_the_cutoff_is_never_read(tiny: tuple[pl.DataFrame, ...]) -> None:
    """Scramble everything the sidecar records at or after T: the probabilities must not move."""
    truth, _, labels = tiny
    cutoff = labels["cutoff"].unique().sort()[2]
    keys = _keys(labels.filter(pl.col("cutoff") == cutoff))
    c = int((cutoff.timestamp() * 1000 - truth["hazard_start"][0].timestamp() * 1000) // DAY_MS)
    cut_ms = int(cutoff.timestamp() * 1000)
    rows = []
    for r in truth.iter_rows(named=True):
        r = dict(r)
        r["satisfaction"] = r["satisfaction"][:c] + [9.0] * (len(r["satisfaction"]) - c)
        r["hazard"] = r["hazard"][:c] + [0.9] * (len(r["hazard"]) - c)
        keep = [i for i, s in enumerate(r["session_start_day"]) if s < c]
        for col in (
            "session_start_day", "session_end_day", "session_last_ms", "session_kind", "session_paid_after",
            "session_gap_mean",
        ):  # fmt: skip
            r[col] = [r[col][i] for i in keep]
        days = [i for i, d in enumerate(r["active_day"]) if d < c]
        r["active_day"] = [r["active_day"][i] for i in days]
        r["active_day_last_ms"] = [r["active_day_last_ms"][i] for i in days]
        if r["decision_day"] == r["decision_day"] and r["decision_day"] >= c:  # not NaN, after T
            r["decision_day"], r["decision_kind"] = float("nan"), None
        if r["churn_ts"] is not None and r["churn_ts"].timestamp() * 1000 >= cut_ms:
            r["churn_ts"], r["churn_kind"] = None, None
        rows.append(r)
    scrambled = pl.DataFrame(rows, schema=truth.schema)
    a = oracle_probabilities(truth, keys, CFG, n_draws=30, seed=9)
    b = oracle_probabilities(scrambled, keys, CFG, n_draws=30, seed=9)
    assert isinstance(a, OracleResult) and isinstance(b, OracleResult)
    assert a.table.equals(b.table)
    # ... while the past is read: unhappier users before T leave more
    sat = np.vstack(truth["satisfaction"].to_list()) - 2.0
    earlier = truth.with_columns(pl.Series("satisfaction", sat, dtype=truth.schema["satisfaction"]))
    d = oracle_probabilities(earlier, keys, CFG, n_draws=30, seed=9)
    assert isinstance(d, OracleResult)
    assert d.table["p"].mean() > a.table["p"].mean() + 0.02  # unhappier users leave more


def test_the_run_label_configuration_is_applied(tiny: tuple[pl.DataFrame, ...]) -> None:
    truth, _, labels = tiny
    keys = _keys(labels)

    def mean_p(cfg: LabelsConfig) -> float:
        res = oracle_probabilities(truth, keys, cfg, n_draws=40, seed=1)
        assert isinstance(res, OracleResult)
        return float(res.table["p"].mean())

    base = mean_p(CFG)
    assert mean_p(LabelsConfig(horizon_days=5)) < base - 0.03
    assert mean_p(LabelsConfig(use_inactivity=False)) < base - 0.02
    assert mean_p(LabelsConfig(use_downgrade=True)) > base + 0.005


def test_a_decided_silent_user_is_certain(tiny: tuple[pl.DataFrame, ...]) -> None:
    """After a silent decision and the last session, the future is fixed: every draw agrees."""
    truth, _, _ = tiny
    silent = truth.filter((pl.col("decision_kind") == "silent") & pl.col("churn_ts").is_not_null())
    rows = []
    for r in silent.iter_rows(named=True):
        end = max(r["session_end_day"])
        day = int(np.ceil(max(end, r["decision_day"]))) + 1
        if day + 35 < 63:
            rows.append((r["user_id"], r["hazard_start"] + timedelta(days=day)))
    assert rows, "tiny seed 11 has no silent churner early enough"
    keys = pl.DataFrame(
        {"user_id": [u for u, _ in rows], "cutoff": pl.Series([t for _, t in rows], dtype=UTC_MS)}
    )
    res = oracle_probabilities(truth, keys, CFG, n_draws=20, seed=2)
    assert isinstance(res, OracleResult)
    p = res.table["p"].drop_nulls()
    assert p.len() > 0 and set(p.to_list()) <= {0.0, 1.0}


def test_old_signature_still_gives_the_realised_hazard_oracle(tiny: tuple[pl.DataFrame, ...]) -> None:
    truth, _, labels = tiny
    with pytest.warns(DeprecationWarning, match="LabelsConfig"):
        old = oracle_probabilities(truth, _keys(labels), 14)
    assert isinstance(old, np.ndarray) and old.shape == (labels.height,)


def test_errors_name_the_problem(tiny: tuple[pl.DataFrame, ...]) -> None:
    truth, _, labels = tiny
    keys = _keys(labels).head(3)
    with pytest.raises(ValueError, match="not in the ground truth"):
        oracle_probabilities(truth, keys.with_columns(pl.lit("nobody").alias("user_id")), CFG, n_draws=5)
    with pytest.raises(ValueError, match="not a UTC midnight"):
        oracle_probabilities(truth, keys.with_columns(pl.col("cutoff") + pl.duration(hours=3)), CFG)
    with pytest.raises(ValueError, match="lack column 'cutoff'"):
        oracle_probabilities(truth, keys.select("user_id"), CFG)
    with pytest.raises(ValueError, match="predates the Monte-Carlo oracle"):
        oracle_probabilities(truth.drop("session_gap_mean"), keys, CFG)
    with pytest.raises(ValueError, match="n_draws"):
        oracle_probabilities(truth, keys, CFG, n_draws=1)


def test_row_budget_scores_a_sample(tiny: tuple[pl.DataFrame, ...]) -> None:
    truth, _, labels = tiny
    res = oracle_probabilities(truth, _keys(labels), CFG, n_draws=10, seed=0, max_rows=25)
    assert isinstance(res, OracleResult)
    assert res.table["p"].drop_nulls().len() == 25 and res.summary["rows_sampled"] == 25


def test_latent_state_features_are_the_state_at_the_cutoff(tiny: tuple[pl.DataFrame, ...]) -> None:
    truth, _, labels = tiny
    keys = _keys(labels)
    feats = latent_state_features(truth, keys)
    assert feats.select("user_id", "cutoff").equals(keys)
    latent = [c for c in feats.columns if c.startswith("latent__")]
    assert {
        "latent__engagement",
        "latent__sat",
        "latent__hazard",
        "latent__paid",
        "latent__tenure_days",
    } <= set(latent)
    row = feats.row(5, named=True)
    t = truth.filter(pl.col("user_id") == row["user_id"]).row(0, named=True)
    c = (row["cutoff"] - t["hazard_start"]).days
    assert row["latent__sat"] == t["satisfaction"][c - 1]  # the day that ended at T, not T's own day
    assert row["latent__engagement"] == t["engagement"]
    assert row["latent__tenure_days"] == pytest.approx(c - t["reg_day"])
    assert 0 < row["latent__hazard"] < 1
    assert feats.select(pl.col(latent).null_count()).row(0)[0] == 0
    # the true state predicts the labels better than chance
    from sklearn.metrics import roc_auc_score

    y = labels["label"].to_numpy()
    assert roc_auc_score(y, feats["latent__hazard"].to_numpy()) > 0.6


def test_conditioned_gap_has_the_truncated_gamma_law() -> None:
    rng = np.random.default_rng(0)
    shape, mean, elapsed = 4.0, np.full(20_000, 5.0), np.full(20_000, 7.5)
    g = draw_gap_beyond(rng, shape, mean, elapsed)
    assert (g >= 7.5).all()
    law = stats.gamma(shape, scale=5.0 / shape)

    def cdf(x: np.ndarray) -> np.ndarray:
        return (law.cdf(x) - law.cdf(7.5)) / law.sf(7.5)

    assert stats.kstest(g, cdf).pvalue > 0.001
    far = draw_gap_beyond(rng, shape, np.full(10, 1.0), np.full(10, 400.0))  # tail underflows
    assert (far >= 400.0).all() and np.isfinite(far).all()


def test_last_event_offsets_follow_the_event_expansion(tmp_path: Path) -> None:
    """The oracle's law of a session's last logged-in event matches where the expansion puts it."""
    world = build_world("mini", 5)
    last = np.concatenate(
        [times.session_last_ms for _, where in _iter_chunks(world) if where for times in [where[2]]]
    )
    s = world.sessions
    real = (last - session_start_ms(world.preset, s.start_days)) / 1000.0
    regime = get_regime("baseline")
    song = _song_seconds(5, regime.after)
    special = s.upgrade | s.downgrade | s.final
    draw = _last_event_offset_s(
        np.random.default_rng(1), regime, song, s.n_songs, s.sat, s.paid,
        np.floor(s.start_days).astype(np.int64), special,
    )  # fmt: skip
    for mask in (s.n_songs < 30, (s.n_songs >= 30) & (s.n_songs < 120), s.n_songs >= 120, s.final, special):
        a, b = real[mask], draw[mask]
        se = np.sqrt((a.var() + b.var()) / mask.sum())
        assert abs(a.mean() - b.mean()) < 4 * se, (mask.sum(), a.mean(), b.mean())
        assert b.std() == pytest.approx(a.std(), rel=0.1)
    assert catalogue_for(5, regime.after).n_songs == regime.after.n_songs
    assert (s.final == (s.kind == SESSION_FINAL)).all()
