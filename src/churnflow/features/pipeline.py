"""The features stage's work: pick the engine from config and compute features for the labels' keys."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import polars as pl

from churnflow.config.features import FeaturesConfig
from churnflow.features.columns import FeatureInputError
from churnflow.features.offline import compute_features

ENGINES: Final[tuple[str, ...]] = ("polars", "spark")


def features_for_labels(events_path: str | Path, labels: pl.DataFrame, cfg: FeaturesConfig) -> pl.DataFrame:
    """Features for every (user_id, cutoff) row of ``labels``, with ``cfg.engine`` (polars | spark).

    Input: the events Parquet path and the labels table (only its key columns are read). Output: the
    feature table of :func:`churnflow.features.compute_features`, in the labels' row order.
    """
    if cfg.engine not in ENGINES:
        raise FeatureInputError(f"features.engine: expected one of {list(ENGINES)}, got {cfg.engine!r}")
    keys = labels.select("user_id", "cutoff")
    if cfg.engine == "polars":
        return compute_features(pl.scan_parquet(events_path), keys, cfg)
    from churnflow.features.spark import compute_features_spark, make_spark_session

    spark = make_spark_session(cfg)
    try:
        return compute_features_spark(spark, events_path, keys, cfg)
    finally:
        spark.stop()
