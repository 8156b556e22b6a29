"""Typed configuration: dataclass schemas for every Hydra group in ``conf/``.

Config flows one way: ``conf/`` (Hydra) → ``params.yaml`` (composed by DVC or ``make params``) →
:func:`load_config` (validated against :class:`Config`) → plain function arguments.
"""

from churnflow.config.loading import compose_config, load_config, to_container
from churnflow.config.schema import (
    Config,
    DataConfig,
    EvaluateConfig,
    FeaturesConfig,
    LabelsConfig,
    ModelConfig,
    MonitorConfig,
    ServeConfig,
    TrackingConfig,
    TrainConfig,
    TuneConfig,
)

__all__ = [
    "Config",
    "DataConfig",
    "EvaluateConfig",
    "FeaturesConfig",
    "LabelsConfig",
    "ModelConfig",
    "MonitorConfig",
    "ServeConfig",
    "TrackingConfig",
    "TrainConfig",
    "TuneConfig",
    "compose_config",
    "load_config",
    "to_container",
]
