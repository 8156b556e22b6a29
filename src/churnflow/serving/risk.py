"""Risk bands: churn probability → ``low`` | ``medium`` | ``high``.

Invariant: ``p < low`` → low, ``low <= p < high`` → medium, ``p >= high`` → high,
with ``0 <= low <= high <= 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from churnflow.config.serve import ServeConfig

RISK_LEVELS: Final[tuple[str, str, str]] = ("low", "medium", "high")


@dataclass(frozen=True)
class RiskBands:
    """Two probability cut points; validated on construction."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.low <= self.high <= 1.0:
            raise ValueError(
                f"risk bands need 0 <= risk_low <= risk_high <= 1, got low={self.low}, high={self.high}"
            )

    @classmethod
    def from_config(cls, cfg: ServeConfig) -> RiskBands:
        """Bands from the ``serve`` config group (``risk_low``, ``risk_high``)."""
        return cls(low=float(cfg.risk_low), high=float(cfg.risk_high))

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> RiskBands:
        """Bands from a packaged model's metadata (``{"risk_bands": {"low": .., "high": ..}}``)."""
        try:
            bands = metadata["risk_bands"]
            return cls(low=float(bands["low"]), high=float(bands["high"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"model metadata lacks risk_bands.low/high: {exc!r}") from exc

    def to_dict(self) -> dict[str, float]:
        """Plain form for model metadata."""
        return {"low": self.low, "high": self.high}

    def level(self, probability: float) -> str:
        """The band of one probability (must lie in [0, 1])."""
        if not 0.0 <= probability <= 1.0:  # also rejects NaN
            raise ValueError(f"churn probability must lie in [0, 1], got {probability}")
        if probability < self.low:
            return RISK_LEVELS[0]
        if probability < self.high:
            return RISK_LEVELS[1]
        return RISK_LEVELS[2]

    def levels(self, probabilities: np.ndarray) -> list[str]:
        """Vectorised :meth:`level` for batch scoring; same rule, same errors."""
        p = np.asarray(probabilities, dtype=np.float64)
        bad = ~((p >= 0.0) & (p <= 1.0))
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise ValueError(f"churn probability must lie in [0, 1], got {p[first]} at row {first}")
        idx = (p >= self.low).astype(np.int8) + (p >= self.high).astype(np.int8)
        return [RISK_LEVELS[i] for i in idx.tolist()]
