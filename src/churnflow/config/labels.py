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

    def __post_init__(self) -> None:
        for name in ("cutoff_every_days", "horizon_days", "inactivity_days"):
            if getattr(self, name) < 1:
                raise ValueError(f"labels.{name} must be >= 1, got {getattr(self, name)}")
        if self.first_cutoff_days < 0:
            raise ValueError(f"labels.first_cutoff_days must be >= 0, got {self.first_cutoff_days}")
        if not (self.use_cancellation or self.use_inactivity or self.use_downgrade):
            raise ValueError("labels: no churn kind on (use_cancellation, use_inactivity, use_downgrade)")
