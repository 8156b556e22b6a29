"""New data → features and scores for a drift check (what `churnflow monitor` runs between its I/O)."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import polars as pl

from churnflow.config import FeaturesConfig, MonitorConfig
from churnflow.monitoring.drift import DriftReport, check_drift, monitoring_cutoffs


class ProbabilityModel(Protocol):
    """The part of :class:`churnflow.models.ChurnModel` used here."""

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:  # pragma: no cover - protocol
        """``P(churn)`` per row."""
        ...


def features_at_last_event(
    events: pl.DataFrame, cfg: FeaturesConfig, cutoff: str, active_days: int | None
) -> pl.DataFrame:
    """Features (one row per monitored user) at the last event + 1 ms: the export's (``export_end``, active
    users only) or each user's own (``user_last_event``); see :func:`monitoring_cutoffs`."""
    from churnflow.features import compute_features

    return compute_features(events, monitoring_cutoffs(events, cutoff, active_days), cfg)


def drift_of_events(
    events: pl.DataFrame,
    reference: dict[str, Any],
    model: ProbabilityModel,
    features_cfg: FeaturesConfig,
    monitor_cfg: MonitorConfig,
    active_days: int | None = None,
) -> DriftReport:
    """Features at the last event (``monitor_cfg.cutoff``), scored by ``model``, vs ``reference``.

    ``active_days``: keep users active within that many days of the export's end (pass the label
    definition's inactivity days, so the monitored population matches the training one)."""
    features = features_at_last_event(events, features_cfg, monitor_cfg.cutoff, active_days)
    return check_drift(reference, features, model.predict_proba(features), monitor_cfg)
