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
    validation_user_share: float = 0.5  # share of users (hash-chosen, seeded) held out for validation
    report_every: int = 25  # boosting rounds between intermediate reports (pruning)
    pruner_warmup_trials: int = 5  # trials completed before the pruner may prune


@dataclass
class TrainConfig:
    """Final fit, registration and promotion gates."""

    n_test_cutoffs: int = 1
    class_weight: str = "balanced"  # balanced | none
    staging_auc: float = 0.85
    promote_auc: float = 0.90
    purge_label_overlap: bool = False  # true: drop training rows whose label window reaches the next split
    threshold_rule: str = "max_f1"  # max_f1 | target_precision | top_k (chosen on validation predictions)
    threshold_target_precision: float = 0.6
    threshold_top_k_share: float = 0.25
    threshold_source: str = "auto"  # auto | validation | oof (user-grouped out-of-fold over development rows)
    threshold_folds: int = 5


@dataclass
class TrackingConfig:
    """MLflow tracking and registry."""

    uri: str = "sqlite:///mlflow.db"
    experiment: str = "churnflow"
    registered_model: str = "churn"
