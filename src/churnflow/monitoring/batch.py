"""New data → features and scores for a drift check (what `churnflow monitor` runs between its I/O)."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import polars as pl

from churnflow.config import FeaturesConfig, MonitorConfig
from churnflow.monitoring.drift import DriftReport, check_drift, last_event_cutoffs


class ProbabilityModel(Protocol):
    """The part of :class:`churnflow.models.ChurnModel` used here."""

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:  # pragma: no cover - protocol
        """``P(churn)`` per row."""
        ...


def features_at_last_event(events: pl.DataFrame, cfg: FeaturesConfig) -> pl.DataFrame:
    """Features of every user at cutoff = their last event ``ts`` + 1 ms (one row per user)."""
    from churnflow.features import compute_features

    return compute_features(events, last_event_cutoffs(events), cfg)


def drift_of_events(
    events: pl.DataFrame,
    reference: dict[str, Any],
    model: ProbabilityModel,
    features_cfg: FeaturesConfig,
    monitor_cfg: MonitorConfig,
) -> DriftReport:
    """Features at each user's last event, scored by ``model``, compared with ``reference``."""
    features = features_at_last_event(events, features_cfg)
    return check_drift(reference, features, model.predict_proba(features), monitor_cfg)
