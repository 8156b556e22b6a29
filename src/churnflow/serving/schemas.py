"""Request and response bodies of ``POST /predict`` (pydantic; BentoML answers 400 on a schema error).

The events themselves stay plain dicts here: :func:`churnflow.data.load.normalize_records` validates them
field by field so an error can name the event index and the raw key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class PredictRequest(BaseModel):
    """Raw Sparkify events of ONE user and an optional scoring cutoff (ISO 8601 or epoch milliseconds)."""

    model_config = ConfigDict(extra="forbid")

    events: list[dict[str, Any]] = Field(
        min_length=1, description="Raw Sparkify event dicts (keys as in the export: userId, ts, page, ...)"
    )
    cutoff: int | datetime | None = Field(
        default=None,
        description="Score as of this instant (epoch ms or ISO 8601); default: last event ts + 1 ms",
    )


class PredictResponse(BaseModel):
    """One user's churn score and where it came from."""

    user_id: str
    churn_probability: float = Field(ge=0.0, le=1.0)
    churn_prediction: int = Field(ge=0, le=1, description="1 when churn_probability >= the model threshold")
    risk_level: Literal["low", "medium", "high"]
    prediction_id: str
    model_version: str
    model_alias: str
    n_events: int
    cutoff: str = Field(description="ISO 8601 UTC instant the features were computed at")
    feature_count: int


class ErrorResponse(BaseModel):
    """Body of a 4xx answer raised by the service itself (not by schema validation)."""

    error: str
    field: str | None = None
    index: int | None = None


def cutoff_to_ms(value: int | datetime | None) -> int | None:
    """Epoch ms stays as is; a datetime becomes epoch ms (naive → UTC); None stays None."""
    if value is None or isinstance(value, int):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return round(value.timestamp() * 1000)


def ms_to_iso(ms: int) -> str:
    """Epoch ms → ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
