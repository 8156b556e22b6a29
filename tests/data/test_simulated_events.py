"""Expectations on the simulated `mini` world (seed 42), the preset compared with the published mini file.

Calibration to the published mini file within ±15% on every listed marginal, the loader accepting every
line, behaviour that changes before churn (with noise), and the Monte-Carlo oracle: calibrated against the
realised labels per cutoff, informative but not perfect under the pipeline's own labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.stats import chi2

from churnflow.config.labels import LabelsConfig
from churnflow.labels import build_labels
from churnflow.simulate import (
    OracleResult,
    SimulationSummary,
    load_ground_truth,
    oracle_probabilities,
    simulate_to_dir,
)
from churnflow.simulate.calibration import TOLERANCE, calibration_table, read_events, targets_for

DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def mini(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SimulationSummary]:
    out = tmp_path_factory.mktemp("mini")
    return out, simulate_to_dir("mini", 42, out, progress=False)


@pytest.fixture(scope="module")
def mini_events(mini: tuple[Path, SimulationSummary]) -> pl.DataFrame:
    return read_events(mini[1].events_path)


@pytest.fixture(scope="module")
def mini_truth(mini: tuple[Path, SimulationSummary]) -> pl.DataFrame:
    truth = load_ground_truth(mini[0])
    assert truth is not None
    return truth


@pytest.fixture(scope="module")
def calibration(mini_events: pl.DataFrame) -> dict[str, tuple[float, float, float]]:
    return {r.name: (r.simulated, r.target, r.ratio) for r in calibration_table(mini_events, "mini", 225)}


#: a stationary world cannot match it: upgrades must balance downgrades plus the free inflow net of free
#: churn, while the published 63-day file holds 2.5 upgrades per downgrade (see docs/simulator.md)
NOT_STATIONARY = "page:Submit Upgrade"


@pytest.mark.parametrize("marginal", [m for m in targets_for("mini", 225)[0] if m != NOT_STATIONARY])
def test_mini_is_within_15_percent_of_the_published_marginal(
    marginal: str, calibration: dict[str, tuple[float, float, float]]
) -> None:
    simulated, target, ratio = calibration[marginal]
    assert abs(ratio - 1.0) <= TOLERANCE, f"{marginal}: simulated {simulated:,.3f} vs published {target:,.3f}"


def test_submit_upgrade_is_what_a_stationary_level_mix_allows(
    calibration: dict[str, tuple[float, float, float]],
) -> None:
    """About as many upgrades as downgrades plus the net free inflow: ~0.55 of the published count."""
    up, target, ratio = calibration[NOT_STATIONARY]
    down = calibration["page:Submit Downgrade"][0]
    assert 0.45 <= ratio <= 0.75, f"Submit Upgrade {up} vs published {target}"
    assert down < up < 2.0 * down


def test_behaviour_changes_before_churn(mini_events: pl.DataFrame, mini_truth: pl.DataFrame) -> None:
    """Thumbs down per song rise and thumbs up per song fall in the 14 days before churn (pooled)."""
    churn = mini_truth.filter(pl.col("churn_kind").is_not_null()).select(
        "user_id", pl.col("churn_ts").dt.epoch("ms").alias("churn_ms")
    )
    ev = mini_events.filter(pl.col("userId") != "").join(
        churn, left_on="userId", right_on="user_id", how="left"
    )
    before = pl.col("ts") >= pl.col("churn_ms") - 14 * DAY_MS

    def per_song(frame: pl.DataFrame, page: str) -> float:
        return frame.filter(pl.col("page") == page).height / frame.filter(pl.col("page") == "NextSong").height

    late = ev.filter(pl.col("churn_ms").is_not_null() & before)
    early = ev.filter(pl.col("churn_ms").is_not_null() & ~before)
    stayers = ev.filter(pl.col("churn_ms").is_null())
    assert per_song(late, "Thumbs Down") > per_song(early, "Thumbs Down") > per_song(stayers, "Thumbs Down")
    assert per_song(late, "Thumbs Up") < per_song(early, "Thumbs Up") < per_song(stayers, "Thumbs Up")
    # noisy, not obvious: many churners' last fortnight looks like a stayer's
    late_user = late.group_by("userId").agg(
        ((pl.col("page") == "Thumbs Down").sum() / (pl.col("page") == "NextSong").sum().clip(1)).alias("r")
    )
    stayer_median = (
        stayers.group_by("userId")
        .agg(
            ((pl.col("page") == "Thumbs Down").sum() / (pl.col("page") == "NextSong").sum().clip(1)).alias(
                "r"
            )
        )["r"]
        .median()
    )
    assert (late_user["r"] <= stayer_median).mean() >= 0.15


def test_churners_are_free_more_often_and_newer(mini_truth: pl.DataFrame) -> None:
    """Paid/free and tenure matter: churn is more frequent among free and recently registered users."""
    t = mini_truth.filter(pl.col("n_events") > 0).with_columns(
        pl.col("churn_kind").is_not_null().alias("churned")
    )
    rate = dict(t.group_by("paid_at_start").agg(pl.col("churned").mean()).iter_rows())
    assert rate[False] > rate[True]
    hazard = np.vstack(t["hazard"].to_list())[:, :63]
    assert (
        hazard.mean(axis=1)[t["churned"].to_numpy()].mean()
        > hazard.mean(axis=1)[~t["churned"].to_numpy()].mean()
    )


@pytest.mark.slow
def test_loader_accepts_every_simulated_line(mini: tuple[Path, SimulationSummary]) -> None:
    from churnflow.config.data import DataConfig
    from churnflow.data.load import load_events

    result = load_events([mini[0]], DataConfig())
    assert result.quality["quarantined"] == 0, result.quality["reasons"]
    assert result.quality["duplicates"] == 0
    assert result.events.height + result.anonymous.height == mini[1].n_events


@pytest.fixture(scope="module")
def mini_labels(mini_events: pl.DataFrame) -> pl.DataFrame:
    """The pipeline's labels on mini (columns as the loader names them, from the raw events)."""
    events = (
        mini_events.filter(pl.col("userId") != "")
        .select(
            pl.col("userId").alias("user_id"),
            pl.col("ts").cast(pl.Datetime("ms", "UTC")),
            "page",
            pl.col("registration").cast(pl.Datetime("ms", "UTC")),
        )
        .sort("user_id", "ts")
    )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_labels(events, LabelsConfig()).labels


def _calibration(labels: pl.DataFrame, oracle: pl.DataFrame) -> pl.DataFrame:
    """Per cutoff: rows, realised label rate, mean oracle p, and z = (rate - mean p) / its error, where the
    error combines the Bernoulli sampling of the labels given p and the oracle's Monte-Carlo error."""
    joined = labels.join(oracle, on=["user_id", "cutoff"], how="left")
    return (
        joined.group_by("cutoff")
        .agg(
            pl.len().alias("n"),
            pl.col("label").mean().alias("rate"),
            pl.col("p").mean().alias("mean_p"),
            ((pl.col("p") * (1 - pl.col("p"))).sum() + (pl.col("se") ** 2).sum()).sqrt().alias("_err"),
        )
        .with_columns(((pl.col("rate") - pl.col("mean_p")) * pl.col("n") / pl.col("_err")).alias("z"))
        .sort("cutoff")
    )


def test_mc_oracle_is_calibrated_per_cutoff(mini_truth: pl.DataFrame, mini_labels: pl.DataFrame) -> None:
    """Mean oracle probability within its Monte-Carlo + sampling error of the realised label rate, per cutoff
    and pooled; the same check rejects an oracle that ignores the inactivity rule (as the old one did)."""
    keys = mini_labels.select("user_id", "cutoff")
    res = oracle_probabilities(mini_truth, keys, LabelsConfig(), n_draws=100, seed=0)
    assert isinstance(res, OracleResult)
    table = _calibration(mini_labels, res.table)
    print(table)
    assert table.height >= 8
    assert (table["z"].abs() < 3.0).all(), table
    # pooled over cutoffs: rows of one user are correlated, so the error is at most the mean per-cutoff error
    pooled_z = (table["rate"] - table["mean_p"]).mean() / (table["_err"] / table["n"]).mean()
    assert abs(pooled_z) < 2.5, pooled_z
    limit = chi2.ppf(0.999, table.height)
    assert (table["z"] ** 2).sum() < limit
    wrong = oracle_probabilities(mini_truth, keys, LabelsConfig(use_inactivity=False), n_draws=100, seed=0)
    assert isinstance(wrong, OracleResult)
    bad = _calibration(mini_labels, wrong.table)
    assert (bad["z"] ** 2).sum() > limit, bad


def test_mc_oracle_auc_is_informative_but_not_obvious(
    mini_truth: pl.DataFrame, mini_labels: pl.DataFrame
) -> None:
    from sklearn.metrics import roc_auc_score

    res = oracle_probabilities(
        mini_truth, mini_labels.select("user_id", "cutoff"), LabelsConfig(), n_draws=100
    )
    assert isinstance(res, OracleResult)
    joined = mini_labels.join(res.table, on=["user_id", "cutoff"])
    auc = roc_auc_score(joined["label"].to_numpy(), joined["p"].to_numpy())
    print(f"MC oracle AUC (mini, seed 42, default labels): {auc:.4f} on {joined.height} rows")
    assert 0.75 <= auc <= 0.95, auc
