"""Online execution: one user's events (e.g. from an API request) and one cutoff → a feature dict."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from churnflow.config.features import FeaturesConfig
from churnflow.features.engine import FeatureInputError, compute_feature_row
from churnflow.features.registry import feature_names


def _epoch_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime, exactly (sub-millisecond parts round up: ts < T is kept)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return -(-micros // 1000)


def compute_features_online(events: pl.DataFrame, cutoff: datetime, cfg: FeaturesConfig) -> dict[str, float]:
    """Features of one user at ``cutoff`` from that user's events (only events with ts < cutoff count).

    Same definitions and arithmetic as :func:`churnflow.features.compute_features`; undefined features
    (e.g. a ratio over zero songs) are NaN. A naive ``cutoff`` is read as UTC. Raises
    :class:`FeatureInputError` when the events hold more than one user.
    """
    users = events.get_column("user_id").cast(pl.String).unique() if "user_id" in events.columns else None
    if users is None:
        raise FeatureInputError("events: missing column 'user_id'")
    if users.len() > 1:
        raise FeatureInputError(f"events.user_id: one user expected, got {users.len()}")
    user = users[0] if users.len() else ""
    if cutoff.tzinfo is None:
        cutoff = cutoff.replace(tzinfo=UTC)
    del user
    cutoff_ms = _epoch_ms(cutoff)
    row = compute_feature_row(events, cutoff_ms, cfg)
    return {
        name: float("nan") if v is None else float(v) for name, v in zip(feature_names(cfg), row, strict=True)
    }
