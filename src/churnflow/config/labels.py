"""Config schema: the `labels` group(s)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LabelsConfig:
    """Point-in-time churn definition and cutoff schedule."""

    first_cutoff_days: int = 7  # first cutoff, in days after the first event
    cutoff_every_days: int = 3
    horizon_days: int = 14
    use_cancellation: bool = True
    use_inactivity: bool = True
    inactivity_days: int = 21
    use_downgrade: bool = False
