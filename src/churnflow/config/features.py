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
    spark_master: str = "local[2]"
    spark_partitions: int = 8

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
