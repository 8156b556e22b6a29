"""Score raw events with a packaged churn model: one user online (``/predict``) or many in batch.

Both paths take the model as anything with ``predict(pd.DataFrame) -> pd.DataFrame[churn_probability]``
(the MLflow pyfunc loaded by ``bentoml.mlflow.load_model``) and the :class:`ServingSettings` read from the
Bento model, and do no I/O. Invariant: the cutoff defaults to each user's last event ``ts`` + 1 ms, so the
features see every event sent, and ``churn_prediction == (churn_probability >= threshold)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd
import polars as pl

from churnflow.data.load import EventValidationError, normalize_records
from churnflow.features import compute_features, compute_features_online
from churnflow.serving.settings import ServingSettings

PROBABILITY_COLUMN = "churn_probability"
SCORE_COLUMNS: tuple[str, ...] = ("user_id", "cutoff", "churn_probability", "churn_prediction", "risk_level")


class PyfuncLike(Protocol):
    """The part of ``mlflow.pyfunc.PyFuncModel`` used here."""

    def predict(self, data: pd.DataFrame) -> Any:  # pragma: no cover - protocol
        """Return a frame with a ``churn_probability`` column, one row per input row."""
        ...


class RequestError(ValueError):
    """A client error: HTTP ``status`` with a message naming the ``field`` (and event ``index``) at fault."""

    def __init__(self, status: int, message: str, field: str | None = None, index: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.index = index

    def to_dict(self) -> dict[str, Any]:
        """JSON body for the error response."""
        return {"error": self.message, "field": self.field, "index": self.index}


@dataclass(frozen=True)
class UserScore:
    """One user's score at one cutoff."""

    user_id: str
    churn_probability: float
    churn_prediction: int
    risk_level: str
    n_events: int
    cutoff_ms: int
    feature_count: int


def ms_to_datetime(ms: int) -> datetime:
    """Epoch ms → aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def probabilities(model: PyfuncLike, features: pd.DataFrame, feature_names: tuple[str, ...]) -> np.ndarray:
    """Run the pyfunc on ``features[feature_names]`` (float64); check shape and range of its answer."""
    missing = [n for n in feature_names if n not in features.columns]
    if missing:
        raise RuntimeError(
            f"feature computation lacks {len(missing)} column(s) the model needs, e.g. {missing[:5]}: "
            "the feature code and the packaged model disagree"
        )
    out = model.predict(features.loc[:, list(feature_names)].astype("float64"))
    probs = np.asarray(out[PROBABILITY_COLUMN] if isinstance(out, pd.DataFrame) else out, dtype=np.float64)
    probs = probs.reshape(-1)
    if probs.shape[0] != len(features):
        raise RuntimeError(f"model returned {probs.shape[0]} probabilities for {len(features)} rows")
    if not np.all((probs >= 0.0) & (probs <= 1.0)):
        raise RuntimeError("model returned probabilities outside [0, 1]")
    return probs


def score_user_records(
    records: list[dict[str, Any]],
    cutoff_ms: int | None,
    model: PyfuncLike,
    settings: ServingSettings,
) -> UserScore:
    """Normalise one user's raw events, compute online features at the cutoff and score them.

    Raises :class:`RequestError` (400/413) naming the field for bad input.
    """
    if len(records) > settings.max_events_per_request:
        raise RequestError(
            413,
            f"{len(records)} events exceed max_events_per_request={settings.max_events_per_request}",
            field="events",
        )
    try:
        events = normalize_records(records)
    except EventValidationError as exc:
        raise RequestError(
            400, f"events[{exc.index}].{exc.field}: {exc.reason}", field=exc.field, index=exc.index
        ) from exc
    users = events.get_column("user_id").unique().to_list()
    if len(users) != 1 or not users[0]:
        raise RequestError(
            400,
            f"events must belong to exactly one non-empty userId, got {sorted(map(str, users))[:5]}",
            "userId",
        )
    last_ms = events.get_column("ts").dt.epoch("ms").max()
    if not isinstance(last_ms, int):
        raise RequestError(400, "events hold no valid ts", field="ts")
    cutoff = last_ms + 1 if cutoff_ms is None else int(cutoff_ms)
    values = compute_features_online(events, ms_to_datetime(cutoff), settings.features)
    frame = pd.DataFrame([values])
    prob = float(probabilities(model, frame, settings.feature_names)[0])
    return UserScore(
        user_id=str(users[0]),
        churn_probability=prob,
        churn_prediction=int(prob >= settings.threshold),
        risk_level=settings.risk_bands.level(prob),
        n_events=events.height,
        cutoff_ms=cutoff,
        feature_count=len(settings.feature_names),
    )


def score_events_frame(events: pl.DataFrame, model: PyfuncLike, settings: ServingSettings) -> pl.DataFrame:
    """Score every user of a normalised events frame at (their last event ts + 1 ms), with offline features.

    Returns ``user_id, cutoff, churn_probability, churn_prediction, risk_level`` sorted by ``user_id``.
    """
    if events.height == 0:
        raise ValueError("no events to score")
    cutoffs = (
        events.filter(pl.col("user_id").is_not_null() & (pl.col("user_id") != ""))
        .group_by("user_id")
        .agg((pl.col("ts").max() + pl.duration(milliseconds=1)).alias("cutoff"))
        .sort("user_id")
    )
    features = compute_features(events, cutoffs, settings.features).sort("user_id")
    probs = probabilities(model, features.to_pandas(), settings.feature_names)
    return pl.DataFrame(
        {
            "user_id": features.get_column("user_id"),
            "cutoff": features.get_column("cutoff"),
            "churn_probability": probs,
            "churn_prediction": (probs >= settings.threshold).astype(np.int8),
            "risk_level": settings.risk_bands.levels(probs),
        }
    )
