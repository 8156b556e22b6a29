"""Config schema: the `modelling` group(s)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelConfig:
    """Model family, its fixed parameters and its Optuna search space."""

    name: str = "lightgbm"  # lightgbm | xgboost | logreg
    fixed: dict[str, Any] = field(default_factory=dict)
    search_space: dict[str, Any] = field(default_factory=dict)


@dataclass
class TuneConfig:
    """Optuna study settings."""

    n_trials: int = 30
    sampler_seed: int = 42
    pruner: str = "median"  # median | successive_halving | none
    timeout_s: int = 0  # 0 = no timeout
    n_validation_cutoffs: int = 1
    metric: str = "roc_auc"


@dataclass
class TrainConfig:
    """Final fit, registration and promotion gates."""

    n_test_cutoffs: int = 1
    class_weight: str = "balanced"  # balanced | none
    staging_auc: float = 0.85
    promote_auc: float = 0.90


@dataclass
class TrackingConfig:
    """MLflow tracking and registry."""

    uri: str = "sqlite:///mlflow.db"
    experiment: str = "churnflow"
    registered_model: str = "churn"
