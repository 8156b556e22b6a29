"""Config schema: the `evaluate` group(s)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EvaluateConfig:
    """Evaluation: business values, bootstrap, calibration, leakage and explanation settings."""

    top_k_share: float = 0.25  # business summary: net value / ROI when targeting this share
    value_per_retained_user: float = 120.0
    intervention_cost: float = 10.0
    intervention_success_rate: float = 0.3
    bootstrap_samples: int = 1000
    calibration_bins: int = 10
    leakage_auc_threshold: float = 0.97
    shap_sample: int = 500
    business_points: int = 100  # points of the net-value curve over the targeted share
    oracle_min_ratio: float = 0.95  # goal: test AUC >= this x oracle AUC (simulated data)
