"""Config schema: the `evaluate` group(s)."""

from __future__ import annotations

from dataclasses import dataclass


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
