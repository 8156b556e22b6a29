"""Spark execution: events partitioned by user, the same Polars partition function in ``mapInArrow``.

Each Spark partition holds every event of its users (``repartition(n, "user_id")``); the function
gathers the partition's Arrow batches into one Polars frame and calls
:func:`churnflow.features.offline.compute_feature_frame` — the very function the offline path runs —
for the cutoffs of the users present. Users with cutoffs but no events are computed on the driver
from an empty frame, so the output matches :func:`churnflow.features.compute_features` row for row.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from churnflow.config.features import FeaturesConfig
from churnflow.features.columns import REQUIRED_EVENT_COLUMNS
from churnflow.features.offline import compute_feature_frame, normalize_cutoffs
from churnflow.features.registry import feature_names

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def make_spark_session(cfg: FeaturesConfig, app_name: str = "churnflow-features") -> SparkSession:
    """A Spark session for ``cfg.spark_master``: UTC, Arrow on, no UI; ``cfg.spark_conf`` on top.

    A ``local`` master binds to 127.0.0.1 and its Python workers run this interpreter (``PYSPARK_PYTHON``
    defaults to ``sys.executable``). An empty master leaves it to ``spark-submit`` or the managed service.
    """
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    if cfg.spark_master:
        builder = builder.master(cfg.spark_master)
    if cfg.spark_master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = (
            builder.config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.memory", cfg.spark_driver_memory)
        )
    builder = (
        builder.config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(cfg.spark_partitions))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    for key, value in sorted(cfg.spark_conf.items()):
        builder = builder.config(key, str(value))
    return builder.getOrCreate()


def _spark_schema(names: list[str]) -> str:
    """DDL of the partition function's output: user_id, T (epoch ms), one double per feature."""
    return ", ".join(["user_id string", "T long", *[f"`{n}` double" for n in names]])


def _to_spark_arrow(frame: pl.DataFrame) -> pa.Table:
    """Polars emits large_string; Spark's ``string`` expects ``string``."""
    table = frame.to_arrow()
    fields = [
        pa.field(f.name, pa.string() if pa.types.is_large_string(f.type) else f.type) for f in table.schema
    ]
    return table.cast(pa.schema(fields))


def compute_features_spark(
    spark: SparkSession, events: str | Path, cutoffs: pl.DataFrame, cfg: FeaturesConfig
) -> pl.DataFrame:
    """Features for each row of ``cutoffs`` (user_id, cutoff) from the events Parquet at ``events``.

    Output equals :func:`churnflow.features.compute_features` on the same data: ``user_id``, ``cutoff``,
    registry features (float64), one row per input row in input order.
    """
    from pyspark.sql import functions as F

    cut = normalize_cutoffs(cutoffs)
    names = feature_names(cfg)
    pairs = cut.select("user_id", "T").unique().sort("user_id", "T")
    path = str(events)
    empty_events = pl.scan_parquet(path).select(REQUIRED_EVENT_COLUMNS).head(0).collect()

    def partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        chunks = list(batches)
        if not chunks:
            return
        frame = pl.from_arrow(pa.Table.from_batches(chunks))
        assert isinstance(frame, pl.DataFrame)
        if frame.height == 0:
            return
        mine = pairs.filter(pl.col("user_id").is_in(frame["user_id"].cast(pl.String).unique().implode()))
        if mine.height == 0:
            return
        yield from _to_spark_arrow(compute_feature_frame(frame, mine, cfg)).to_batches()

    users = spark.createDataFrame(
        [(u,) for u in pairs["user_id"].unique().sort().to_list()], "user_id string"
    )
    sdf = (
        spark.read.parquet(path)
        .select(*REQUIRED_EVENT_COLUMNS)
        .join(F.broadcast(users), on="user_id", how="inner")
        .repartition(cfg.spark_partitions, "user_id")
    )
    result = pl.from_arrow(sdf.mapInArrow(partition, _spark_schema(names)).toArrow())
    assert isinstance(result, pl.DataFrame)
    result = result.with_columns(pl.col("user_id").cast(pl.String))
    missing = pairs.join(result.select("user_id", "T"), on=["user_id", "T"], how="anti")
    if missing.height:
        result = pl.concat(
            [result, compute_feature_frame(empty_events, missing, cfg)], how="vertical_relaxed"
        )
    return cut.join(result, on=["user_id", "T"], how="left", maintain_order="left").select(
        "user_id", "cutoff", *names
    )
