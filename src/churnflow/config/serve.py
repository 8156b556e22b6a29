"""Config schema: the `serve` group(s)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ServeConfig:
    """Online service: risk bands, auth and limits."""

    risk_low: float = 0.3  # probability below → low
    risk_high: float = 0.6  # probability at or above → high
    api_keys_env: str = "CHURNFLOW_API_KEYS"
    rate_limit_per_minute: int = 600
    max_events_per_request: int = 100_000
    bento_model_name: str = "churn"
