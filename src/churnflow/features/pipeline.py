"""The features stage's work: pick the engine from config and compute features for the labels' keys."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from churnflow.config.features import FeaturesConfig
from churnflow.features.offline import compute_features


def features_for_labels(events_path: str | Path, labels: pl.DataFrame, cfg: FeaturesConfig) -> pl.DataFrame:
    """Features for every (user_id, cutoff) row of ``labels``, with ``cfg.engine`` (polars | spark).

    Input: the events Parquet path and the labels table (only its key columns are read). Output: the
    feature table of :func:`churnflow.features.compute_features`, in the labels' row order.
    """
    keys = labels.select("user_id", "cutoff")
    if cfg.engine == "polars":
        return compute_features(pl.scan_parquet(events_path), keys, cfg)
    from churnflow.features.spark import compute_features_spark, make_spark_session

    spark = make_spark_session(cfg)
    try:
        return compute_features_spark(spark, events_path, keys, cfg)
    finally:
        spark.stop()
