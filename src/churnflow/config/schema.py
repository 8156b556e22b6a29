"""The whole composed configuration; each group's dataclass lives in its own module (one owner each)."""

from __future__ import annotations

from dataclasses import dataclass, field

from churnflow.config.data import DataConfig
from churnflow.config.evaluate import EvaluateConfig
from churnflow.config.features import FeaturesConfig
from churnflow.config.labels import LabelsConfig
from churnflow.config.modelling import ModelConfig, TrackingConfig, TrainConfig, TuneConfig
from churnflow.config.monitor import MonitorConfig
from churnflow.config.serve import ServeConfig

__all__ = ["Config"]  # the group dataclasses are re-exported by churnflow.config


@dataclass
class Config:
    """The whole composed configuration (``params.yaml``)."""

    seed: int = 42
    data: DataConfig = field(default_factory=DataConfig)
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
