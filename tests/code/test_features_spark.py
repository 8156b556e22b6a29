"""Spark execution (local[2], real pyspark) gives the same feature table as the offline Polars path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import polars as pl
import pytest

from churnflow.config import FeaturesConfig
from churnflow.features import compute_features
from tests.code.test_features_synthetic import make_events, weekly_cutoffs

pytest.importorskip("pyspark")


@pytest.mark.slow
@pytest.mark.spark
def test_spark_equals_offline_for_the_same_users(tmp_path: Path) -> None:
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from churnflow.features.spark import compute_features_spark, make_spark_session

    cfg = FeaturesConfig(spark_master="local[2]", spark_partitions=3)
    events = make_events(n_users=9, events_per_user=150, seed=7).with_columns(
        pl.col("page").cast(pl.Categorical), pl.col("level").cast(pl.Enum(["free", "paid"]))
    )
    path = tmp_path / "events.parquet"
    events.write_parquet(path)
    cut = weekly_cutoffs(events)
    ghost = pl.DataFrame({"user_id": ["ghost"], "cutoff": [cut["cutoff"][3]]}, schema=cut.schema)
    cut = pl.concat([cut.reverse(), ghost])
    spark = make_spark_session(cfg)
    try:
        got = compute_features_spark(spark, path, cut, cfg)
    finally:
        spark.stop()
    expected = compute_features(events, cut, cfg)
    assert got.select("user_id", "cutoff").equals(cut)
    assert got.equals(expected)
