"""Expectations on the default simulated data (`mini`, seed 42 — what `make run` puts in data/).

Calibration to the published mini file within ±15% on every listed marginal, the loader accepting every
line, behaviour that changes before churn (with noise), and the oracle AUC under the pipeline's own labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from churnflow.simulate import SimulationSummary, load_ground_truth, oracle_probabilities, simulate_to_dir
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


@pytest.mark.parametrize("marginal", list(targets_for("mini", 225)[0]))
def test_mini_is_within_15_percent_of_the_published_marginal(
    marginal: str, calibration: dict[str, tuple[float, float, float]]
) -> None:
    simulated, target, ratio = calibration[marginal]
    assert abs(ratio - 1.0) <= TOLERANCE, f"{marginal}: simulated {simulated:,.3f} vs published {target:,.3f}"


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
    assert (late_user["r"] <= stayer_median).mean() >= 0.2


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


@pytest.mark.slow
def test_oracle_auc_under_the_pipeline_labels_is_informative_but_not_obvious(
    mini: tuple[Path, SimulationSummary], mini_truth: pl.DataFrame
) -> None:
    from sklearn.metrics import roc_auc_score

    from churnflow.config.data import DataConfig
    from churnflow.config.labels import LabelsConfig
    from churnflow.data.load import load_events
    from churnflow.labels import build_labels

    events = load_events([mini[0]], DataConfig()).events
    cfg = LabelsConfig()
    labels = build_labels(events, cfg).labels
    prob = oracle_probabilities(mini_truth, labels.select("user_id", "cutoff"), cfg.horizon_days)
    auc = roc_auc_score(labels["label"].to_numpy(), prob)
    print(f"oracle AUC (mini, seed 42, default labels): {auc:.4f} on {labels.height} rows")
    assert 0.80 <= auc <= 0.93, auc
