"""Config schema: the `features` group(s)."""

from __future__ import annotations

from dataclasses import dataclass, field

FEATURE_ENGINES: tuple[str, ...] = ("polars", "spark")


@dataclass
class FeaturesConfig:
    """Feature engine settings; the feature definitions live in ``churnflow.features``.

    Checked when built (so when loaded): a known engine, distinct positive window lengths, partitions >= 1.
    """

    engine: str = "polars"  # polars | spark
    windows_days: list[int] = field(default_factory=lambda: [7, 14, 28])
    spark_master: str = "local[2]"  # a master URL; "" = the one spark-submit or the managed service sets
    spark_partitions: int = 8  # user partitions (each holds all events of its users)
    spark_driver_memory: str = "2g"  # local mode: the whole JVM (executors run inside the driver)
    spark_conf: dict[str, str] = field(default_factory=dict)  # any other spark.* setting (executor memory...)

    def __post_init__(self) -> None:
        if self.engine not in FEATURE_ENGINES:
            raise ValueError(
                f"features.engine must be one of {' | '.join(FEATURE_ENGINES)}, got {self.engine!r}"
            )
        days = list(self.windows_days)
        if not days or any(w <= 0 for w in days) or len(set(days)) != len(days):
            raise ValueError(f"features.windows_days: distinct positive day counts expected, got {days}")
        if self.spark_partitions < 1:
            raise ValueError(f"features.spark_partitions must be >= 1, got {self.spark_partitions}")
        bad = [k for k in self.spark_conf if not str(k).startswith("spark.")]
        if bad:
            raise ValueError(f"features.spark_conf: keys must be Spark settings (spark.*), got {bad}")
