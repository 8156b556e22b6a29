"""Config schema: the `evaluate` group(s)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EvaluateConfig:
    """Evaluation: bootstrap, oracle, leak alarm, business values, calibration and explanation settings."""

    top_k_share: float = 0.25  # business summary: net value / ROI when targeting this share
    value_per_retained_user: float = 120.0
    intervention_cost: float = 10.0
    intervention_success_rate: float = 0.3
    bootstrap_samples: int = 1000  # user-level bootstrap resamples for every interval
    calibration_bins: int = 10
    leakage_auc_threshold: float = 0.97
    shap_sample: int = 500
    business_points: int = 100  # points of the net-value curve over the targeted share
    oracle_goal_ratio: float = 0.90  # goal (benchmark): known-customer AUC >= this x oracle AUC
    oracle_draws: int = 100  # Monte-Carlo futures per (user, cutoff) for the oracle
    oracle_max_rows: int = 0  # 0 = every test row; else a seeded sample of users up to this many rows
    oracle_threads: int = 0  # threads simulating oracle blocks (0 = one per CPU core; same bytes for any)
    leak_alarm: bool = True  # stop when the model beats the oracle beyond the paired interval
    latent_model: bool = True  # also fit the same model family with the true latent state as features

    def __post_init__(self) -> None:
        for name in ("bootstrap_samples", "calibration_bins", "business_points", "oracle_draws"):
            if getattr(self, name) < 1:
                raise ValueError(f"evaluate.{name} must be >= 1, got {getattr(self, name)}")
        if self.oracle_max_rows < 0 or self.shap_sample < 0 or self.oracle_threads < 0:
            raise ValueError("evaluate.oracle_max_rows, oracle_threads and shap_sample must be >= 0")
        for name in ("top_k_share", "intervention_success_rate", "oracle_goal_ratio"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"evaluate.{name} must be in (0, 1], got {getattr(self, name)}")
        if self.intervention_cost <= 0 or self.value_per_retained_user <= 0:
            raise ValueError("evaluate.intervention_cost and value_per_retained_user must be > 0")
