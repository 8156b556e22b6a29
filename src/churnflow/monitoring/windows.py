"""The current window: a new export's users at the same cutoff offsets the training table used.

Like for like. The training table holds users at scheduled cutoffs ``day0 + first_cutoff_days + k ×
cutoff_every_days`` (``day0``: the export's first UTC midnight), eligible by the label rules (registered
and active before T, not cancelled, not known to be inactive). A check builds exactly that for the new
export: the same schedule from *its* first day, the same eligibility (``churnflow.labels``), features at
each cutoff, the model's probability per row, and the label where the export already shows it (label
window complete) — null otherwise. Drift is then tested on the rows whose offset the reference also
holds; every scheduled cutoff is a performance window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

import numpy as np
import polars as pl

from churnflow.config import FeaturesConfig, LabelsConfig
from churnflow.labels import label_at_cutoffs, schedule_cutoffs
from churnflow.monitoring.profile import DriftInputError
from churnflow.monitoring.reference import cutoff_offsets

_TS = pl.Datetime("ms", "UTC")
#: Far beyond any export: eligibility at a cutoff does not depend on how long the data run.
_FAR = timedelta(days=365 * 100)


class ProbabilityModel(Protocol):
    """What the monitor needs from a model: calibrated ``P(churn)`` per row of a feature frame."""

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:  # pragma: no cover - protocol
        """``P(churn)`` per row."""
        ...


def export_day0(events: pl.DataFrame) -> datetime:
    """UTC midnight of the export's first logged-in event."""
    if "ts" not in events.columns or events.height == 0:
        raise DriftInputError("events: no logged-in user events (column 'ts')")
    first = events["ts"].cast(_TS).min()
    assert isinstance(first, datetime)
    return datetime(first.year, first.month, first.day, tzinfo=UTC)


def eligible_keys(events: pl.DataFrame, cutoffs: list[datetime], labels_cfg: LabelsConfig) -> pl.DataFrame:
    """(``user_id``, ``cutoff``, ``label``) of the users eligible at each cutoff by the label rules;
    ``label`` is null where the export does not show it yet (its window reaches past the last event)."""
    users = events.select(pl.col("user_id").cast(pl.String).unique()).drop_nulls()
    keys = users.join(pl.DataFrame({"cutoff": pl.Series(cutoffs, dtype=_TS)}), how="cross")
    end = events["ts"].cast(_TS).max()
    assert isinstance(end, datetime)
    eligible = label_at_cutoffs(events, keys, labels_cfg, data_end=end + _FAR)
    kept = eligible.filter(pl.col("label").is_not_null()).select("user_id", "cutoff")
    labelled = label_at_cutoffs(events, kept, labels_cfg)
    return labelled.select("user_id", "cutoff", "label").sort(["cutoff", "user_id"])


def window_rows(events: pl.DataFrame, labels_cfg: LabelsConfig, features_cfg: FeaturesConfig) -> pl.DataFrame:
    """The export's eligible users at every scheduled cutoff: keys, ``offset`` (days after the export's
    first UTC midnight), ``label`` (null while unknown) and every feature. Sorted by cutoff, user_id."""
    from churnflow.features import compute_features

    day0 = export_day0(events)
    cutoffs = schedule_cutoffs(events, labels_cfg)
    if not cutoffs:
        raise DriftInputError(
            f"events: the export is shorter than the first cutoff ({labels_cfg.first_cutoff_days} days)"
        )
    keys = eligible_keys(events, cutoffs, labels_cfg)
    if keys.height == 0:
        raise DriftInputError("events: no user is eligible at any cutoff of the export")
    features = compute_features(events, keys.select("user_id", "cutoff"), features_cfg)
    frame = keys.join(features, on=["user_id", "cutoff"], how="left").sort(["cutoff", "user_id"])
    return frame.with_columns(pl.Series("offset", cutoff_offsets(frame["cutoff"], day0)))


def scored_rows(rows: pl.DataFrame, model: ProbabilityModel, reference_offsets: list[int]) -> pl.DataFrame:
    """``rows`` plus ``in_reference`` (the reference holds the row's offset) and ``churn_probability``."""
    scores = np.asarray(model.predict_proba(rows), dtype=np.float64)
    offsets = rows["offset"].to_numpy()
    return rows.with_columns(
        pl.Series("in_reference", np.isin(offsets, np.asarray(reference_offsets, dtype=np.int64))),
        pl.Series("churn_probability", scores),
    )


def current_rows(
    events: pl.DataFrame,
    labels_cfg: LabelsConfig,
    features_cfg: FeaturesConfig,
    model: ProbabilityModel,
    reference_offsets: list[int],
) -> pl.DataFrame:
    """:func:`window_rows` scored by ``model`` (:func:`scored_rows`): what a check reads."""
    return scored_rows(window_rows(events, labels_cfg, features_cfg), model, reference_offsets)
