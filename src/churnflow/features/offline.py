"""Offline execution: features for every (user, cutoff) row of a cutoffs frame (e.g. the labels key)."""

from __future__ import annotations

import polars as pl

from churnflow.config.features import FeaturesConfig
from churnflow.features.engine import compute_feature_frame, normalize_cutoffs
from churnflow.features.registry import feature_names


def compute_features(
    events: pl.DataFrame | pl.LazyFrame, cutoffs: pl.DataFrame, cfg: FeaturesConfig
) -> pl.DataFrame:
    """Point-in-time features for each row of ``cutoffs`` (user_id, cutoff).

    Inputs: events with ``churnflow.data.schema.EVENT_COLUMNS`` (eager or lazy, any row order);
    cutoffs with ``user_id`` and a Datetime ``cutoff``. Output: ``user_id``, ``cutoff`` (Datetime ms UTC),
    then the registry's float64 features; one row per input row, in input order. Features at a cutoff T
    use only events with ``ts < T``; users without events get zero counts and null ratios/recencies.
    """
    cut = normalize_cutoffs(cutoffs)
    names = feature_names(cfg)
    if cut.height == 0:
        return pl.DataFrame(
            schema={
                "user_id": pl.String,
                "cutoff": pl.Datetime("ms", "UTC"),
                **dict.fromkeys(names, pl.Float64),
            }
        )
    frame = compute_feature_frame(events, cut, cfg)
    return cut.join(frame, on=["user_id", "T"], how="left", maintain_order="left").select(
        "user_id", "cutoff", *names
    )
