"""Config schema: the `features` group(s)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FeaturesConfig:
    """Feature engine settings; the feature definitions live in ``churnflow.features``."""

    engine: str = "polars"  # polars | spark
    windows_days: list[int] = field(default_factory=lambda: [7, 14, 28])
    spark_master: str = "local[2]"
    spark_partitions: int = 8
