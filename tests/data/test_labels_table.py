"""Data expectations on the label table, and agreement with the simulator's ground truth."""

from __future__ import annotations

import warnings
from pathlib import Path

import polars as pl
import pytest

from churnflow.config import DataConfig, LabelsConfig
from churnflow.data.load import load_events
from churnflow.labels import LABEL_DTYPES, LabelResult, LabelWarning, build_labels, label_known_at

CFG = LabelsConfig()


@pytest.fixture(scope="module", params=[("tiny", 1), ("tiny", 3)], ids=lambda p: f"{p[0]}-{p[1]}")
def simulated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[pl.DataFrame, LabelResult, pl.DataFrame]:
    simulate = pytest.importorskip("churnflow.simulate")
    preset, seed = request.param
    out = tmp_path_factory.mktemp("sim") / "data"
    simulate.simulate_to_dir(preset, seed, out)
    events = load_events([out], DataConfig()).events
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LabelWarning)
        result = build_labels(events, CFG)
    truth = simulate.load_ground_truth(out)
    assert truth is not None
    return events, result, truth


def test_label_table_expectations(simulated: tuple[pl.DataFrame, LabelResult, pl.DataFrame]) -> None:
    events, result, _ = simulated
    labels, summary = result.labels, result.summary
    assert dict(labels.schema) == LABEL_DTYPES
    assert labels.height > 0 and 0 < summary["positives"] < labels.height
    assert labels.select("user_id", "cutoff").is_duplicated().sum() == 0
    assert set(labels["label"].unique()) <= {0, 1}
    assert (labels["churn_kind"].is_null() == (labels["label"] == 0)).all()
    assert (labels["horizon_days"] == CFG.horizon_days).all()
    end = events["ts"].max()
    for cutoff in labels["cutoff"].unique():
        assert label_known_at(cutoff, CFG) <= end  # no censored cutoff leaks in
    assert summary["n_rows"] == labels.height
    assert summary["n_cutoffs"] == labels["cutoff"].n_unique()
    assert sum(c["n_rows"] for c in summary["per_cutoff"]) == labels.height
    assert sum(summary["per_kind"].values()) == summary["positives"]
    assert summary["censored"]["n_cutoffs"] >= 1 and summary["censored"]["n_rows"] > 0


def test_labels_agree_with_ground_truth(simulated: tuple[pl.DataFrame, LabelResult, pl.DataFrame]) -> None:
    events, result, truth = simulated
    h = pl.duration(days=CFG.horizon_days)
    joined = result.labels.join(
        truth.select(
            "user_id", pl.col("churn_kind").alias("t_kind"), pl.col("churn_ts").alias("t_ts"), "last_event_ts"
        ),
        on="user_id",
        how="left",
    )
    # cancellations: exactly the truth's, at the truth's time
    cancel_rows = joined.filter(pl.col("churn_kind") == "cancel")
    assert ((cancel_rows["t_kind"] == "cancel") & (cancel_rows["t_ts"] == cancel_rows["churn_ts"])).all()
    due = (pl.col("t_ts") >= pl.col("cutoff")) & (pl.col("t_ts") < pl.col("cutoff") + h)
    assert (
        joined.filter((pl.col("t_kind") == "cancel") & due & (pl.col("churn_kind") != "cancel")).height == 0
    )
    # silent churners whose last activity's next day falls before the horizon's end are positives,
    # dated no later than that day
    day_after_last = pl.col("last_event_ts").dt.truncate("1d") + pl.duration(days=1)
    silent = joined.filter((pl.col("t_kind") == "silent") & (day_after_last < pl.col("cutoff") + h))
    assert (silent["label"] == 1).all()
    assert silent.filter(pl.col("churn_ts") > day_after_last).height == 0
    # users who never churn are rarely positive, and only for a real gap of inactivity_days without events
    never = joined.filter(pl.col("t_kind").is_null())
    assert never["label"].sum() <= 0.05 * never.height
    gap = pl.duration(days=CFG.inactivity_days)
    for row in joined.filter(pl.col("churn_kind") == "inactive").iter_rows(named=True):
        window = events.filter(
            (pl.col("user_id") == row["user_id"])
            & (pl.col("ts") >= row["churn_ts"])
            & (pl.col("ts") < pl.lit(row["churn_ts"]) + gap)
        )
        assert window.height == 0, row


def test_eventsim_sample_finishes_with_a_warning(repo_root: Path) -> None:
    folder = repo_root.parent / "shared" / "external" / "eventsim_log_data"
    if not folder.is_dir():
        pytest.skip("../shared/external/eventsim_log_data is not present")
    events = load_events([folder], DataConfig()).events
    with pytest.warns(LabelWarning):
        result = build_labels(events, CFG)
    assert result.summary["cancellation_events"] == 0
    assert result.summary["censored"]["n_rows"] > 0
    assert any("Cancellation Confirmation" in w for w in result.summary["warnings"])
