"""Model behaviour on real pipeline data (simulator `small` → loader → labels → features → purged model).

`small` is the default world's length (140 days) with a quarter of its users, so the default purged split
and churn definition hold and CI stays quick.

* invariance: a user's name never moves the score;
* direction: more thumbs-down and errors before the cutoff raise the average score;
* minimum quality: the known-customer test AUC beats chance clearly, stays below the Monte-Carlo oracle
  (a model above the ceiling is a leak) and reaches a floor relative to it (the 0.90 × oracle goal is
  measured on the default world by benchmarks/bench_honest_evaluation.py);
* calibration: the calibrated mean probability is near the realised churn rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from churnflow.config import Config
from churnflow.models.artifact import ChurnModel
from churnflow.models.splits import TimeSplit
from churnflow.models.training import Dataset, join_features_labels, make_split, train_final

PARAMS = {"learning_rate": 0.03, "num_leaves": 4, "min_child_samples": 10, "colsample_bytree": 0.3}


@dataclass
class Pipeline:
    cfg: Config
    events: pl.DataFrame
    data: Dataset
    split: TimeSplit
    model: ChurnModel
    raw: Path


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    from churnflow.data.load import load_events
    from churnflow.features import compute_features
    from churnflow.labels import build_labels
    from churnflow.simulate import simulate_to_dir

    raw = tmp_path_factory.mktemp("raw")
    cfg = Config()
    cfg.evaluate.bootstrap_samples = 100
    simulate_to_dir("small", 42, raw, gzip=True, progress=False)
    events = load_events([raw], cfg.data).events
    labels = build_labels(events, cfg.labels).labels
    features = compute_features(events, labels.select("user_id", "cutoff"), cfg.features)
    data = join_features_labels(features, labels)
    split = make_split(data, cfg)
    cfg.model.fixed = {**cfg.model.fixed, "n_estimators": 200, "n_jobs": 1}
    result = train_final(data, cfg, PARAMS, split)
    return Pipeline(cfg, events, data, split, result.model, raw)


def _test_keys(p: Pipeline) -> pl.DataFrame:
    return p.data.frame.filter(pl.Series(p.split.known_customers)).select("user_id", "cutoff")


def _score(p: Pipeline, events: pl.DataFrame) -> np.ndarray:
    from churnflow.features import compute_features

    keys = _test_keys(p)
    feats = compute_features(events, keys, p.cfg.features)
    feats = keys.join(feats, on=["user_id", "cutoff"], how="left", maintain_order="left")
    return p.model.predict_proba(feats)


@pytest.mark.slow
def test_names_never_move_the_score(pipeline: Pipeline) -> None:
    renamed = pipeline.events.with_columns(
        pl.lit("Zebediah").alias("first_name"), pl.lit("Quux-Wellington").alias("last_name")
    )
    assert np.array_equal(_score(pipeline, pipeline.events), _score(pipeline, renamed))


@pytest.mark.slow
def test_more_thumbs_down_and_errors_raise_the_average_score(pipeline: Pipeline) -> None:
    events = pipeline.events
    keys = _test_keys(pipeline)
    cutoff = keys["cutoff"].max()
    window = events.join(keys.select("user_id"), on="user_id").filter(
        (pl.col("ts") < cutoff)
        & (pl.col("ts") >= cutoff - pl.duration(days=7))
        & (pl.col("page") == "NextSong")
    )
    base = window.group_by("user_id", maintain_order=True).head(6)  # up to 6 songs per user in the last week
    extra = []
    for offset, page, method, status in ((1, "Thumbs Down", "PUT", 307), (2, "Error", "GET", 404)):
        extra.append(
            base.with_columns(
                pl.col("ts") + pl.duration(milliseconds=offset),
                pl.lit(page).cast(events.schema["page"]).alias("page"),
                pl.lit(method).cast(events.schema["method"]).alias("method"),
                pl.lit(status).cast(events.schema["status"]).alias("status"),
                pl.lit(None).cast(events.schema["song"]).alias("song"),
                pl.lit(None).cast(events.schema["artist"]).alias("artist"),
                pl.lit(None).cast(events.schema["length"]).alias("length"),
            )
        )
    worse = pl.concat([events, *extra]).sort(["user_id", "ts"])
    before, after = _score(pipeline, events), _score(pipeline, worse)
    print(f"mean score {before.mean():.4f} -> {after.mean():.4f}")
    assert after.mean() > before.mean(), (before.mean(), after.mean())
    assert (after >= before - 1e-9).mean() > 0.5  # most users move up or stay


@pytest.mark.slow
def test_minimum_quality_against_the_oracle(pipeline: Pipeline) -> None:
    from churnflow.simulate import load_ground_truth, oracle_probabilities

    p = pipeline
    y = p.data.target(p.split.known_customers)
    scores = p.model.predict_proba_matrix(p.data.matrix(p.split.known_customers))
    auc = roc_auc_score(y, scores)
    truth = load_ground_truth(p.raw)
    assert truth is not None
    result = oracle_probabilities(truth, _test_keys(p), p.cfg.labels, n_draws=100, seed=1)
    oracle_p = result.table["p"].to_numpy()  # type: ignore[union-attr]
    oracle = roc_auc_score(y, oracle_p)
    print(f"small: known-customer AUC {auc:.3f}, oracle {oracle:.3f}, ratio {auc / oracle:.3f}")
    assert auc > 0.65, f"test AUC {auc:.3f} barely beats chance"
    assert auc < oracle, f"model AUC {auc:.3f} above the oracle's {oracle:.3f}: a leak, not a result"
    assert auc / oracle > 0.8, (
        f"model/oracle AUC ratio {auc / oracle:.3f} (model {auc:.3f}, oracle {oracle:.3f})"
    )
    assert abs(scores.mean() - y.mean()) < 0.25 * y.mean(), (
        scores.mean(),
        y.mean(),
    )  # calibrated on validation
