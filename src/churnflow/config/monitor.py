"""Config schema: the `monitor` group(s)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class MonitorConfig:
    """Drift monitoring: PSI bins and alert thresholds."""

    psi_bins: int = 10
    psi_warn: float = 0.1
    psi_alert: float = 0.25
    n_features: int = 30
