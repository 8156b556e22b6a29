"""Dataclass schemas, one per Hydra config group. Defaults here mirror ``conf/`` but ``conf/`` wins."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class DataConfig:
    """Raw input: where it lives and, for the built-in simulator, how it is generated."""

    raw_dir: str = "data"
    source: str = "simulated"  # simulated | export
    preset: str = "mini"  # simulator preset: tiny | mini | medium | full
    seed: int = 42
    scenario: str = "default"
    gzip: bool = False
    max_bad_line_share: float = 0.01  # the load stage fails above this share of quarantined lines
    block_bytes: int = 16_777_216  # JSON read block size for the fast path


@dataclass
class LabelsConfig:
    """Point-in-time churn definition and cutoff schedule."""

    first_cutoff_days: int = 14  # first cutoff, in days after the first event
    cutoff_every_days: int = 7
    horizon_days: int = 14
    use_cancellation: bool = True
    use_inactivity: bool = True
    inactivity_days: int = 21
    use_downgrade: bool = False


@dataclass
class FeaturesConfig:
    """Feature engine settings; the feature definitions live in ``churnflow.features``."""

    engine: str = "polars"  # polars | spark
    windows_days: list[int] = field(default_factory=lambda: [7, 14, 28])
    spark_master: str = "local[2]"
    spark_partitions: int = 8


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
class EvaluateConfig:
    """Evaluation: threshold rule, business values and bootstrap settings."""

    threshold_rule: str = "max_f1"  # max_f1 | target_precision | top_k
    target_precision: float = 0.6
    top_k_share: float = 0.25
    value_per_retained_user: float = 120.0
    intervention_cost: float = 10.0
    intervention_success_rate: float = 0.3
    bootstrap_samples: int = 1000
    calibration_bins: int = 10
    leakage_auc_threshold: float = 0.97
    shap_sample: int = 500


@dataclass
class MonitorConfig:
    """Drift monitoring: PSI bins and alert thresholds."""

    psi_bins: int = 10
    psi_warn: float = 0.1
    psi_alert: float = 0.25
    n_features: int = 30


@dataclass
class ServeConfig:
    """Online service: risk bands, auth and limits."""

    risk_low: float = 0.3  # probability below → low
    risk_high: float = 0.6  # probability at or above → high
    api_keys_env: str = "CHURNFLOW_API_KEYS"
    rate_limit_per_minute: int = 600
    max_events_per_request: int = 100_000
    bento_model_name: str = "churn"


@dataclass
class TrackingConfig:
    """MLflow tracking and registry."""

    uri: str = "sqlite:///mlflow.db"
    experiment: str = "churnflow"
    registered_model: str = "churn"


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
