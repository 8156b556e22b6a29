"""Typed request and response bodies (msgspec): decoding, validation of each field, and the JSON Schemas.

The event struct is generated, not written out: its keys are :data:`churnflow.data.schema.RAW_KEYS`
(required ones from ``REQUIRED_RAW_KEYS``), its types those the loader decodes
(:data:`churnflow.data.load.RAW_DTYPES`), its allowed values the schema's vocabularies (``AUTH_VALUES``,
``STATUS_VALUES``, ...), and its ranges come from the packaged model's limits (:class:`ApiLimits`): timestamps
inside the run's ``data.min_valid_ts``/``max_valid_ts``, integers inside the events table's column types,
finite non-negative song lengths. Invariant: a body that decodes holds only finite numbers inside these
ranges, so nothing downstream can overflow on client input.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
import polars as pl
from msgspec import Meta

from churnflow.data.load import RAW_DTYPES
from churnflow.data.schema import (
    AUTH_VALUES,
    GENDER_VALUES,
    LEVEL_VALUES,
    METHOD_VALUES,
    RAW_KEYS,
    REQUIRED_RAW_KEYS,
    STATUS_VALUES,
)

#: Largest values of the events table's integer columns (``item_in_session`` Int32, ``session_id`` Int64).
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

RiskLevel = Literal["low", "medium", "high"]


@dataclass(frozen=True)
class ApiLimits:
    """Ranges and sizes a request must respect (from the packaged model's metadata)."""

    min_ts_ms: int
    max_ts_ms: int
    max_events_per_request: int
    max_batch_users: int
    max_batch_events: int
    max_string_length: int
    max_song_length_s: float


def _python_type(dtype: pl.DataType) -> type:
    """The JSON-level Python type of a raw dtype as the loader decodes it."""
    if dtype == pl.String():
        return str
    if dtype == pl.Int64():
        return int
    if dtype == pl.Float64():
        return float
    raise TypeError(f"no JSON type for raw dtype {dtype}")


def _field_type(key: str, limits: ApiLimits) -> Any:
    """The annotated type of one raw key: the loader's type plus the API's value set or range."""
    base = _python_type(RAW_DTYPES[key])
    vocab: dict[str, tuple[Any, ...]] = {
        "auth": AUTH_VALUES,
        "level": LEVEL_VALUES,
        "method": METHOD_VALUES,
        "gender": GENDER_VALUES,
        "status": STATUS_VALUES,
    }
    if key in vocab:
        return Literal[vocab[key]]  # type: ignore[valid-type]
    if key == "ts":
        return Annotated[int, Meta(ge=limits.min_ts_ms, lt=limits.max_ts_ms, description="epoch ms")]
    if key == "registration":
        return Annotated[float, Meta(ge=limits.min_ts_ms, lt=limits.max_ts_ms, description="epoch ms")]
    if key == "sessionId":
        return Annotated[int, Meta(ge=0, le=INT64_MAX)]
    if key == "itemInSession":
        return Annotated[int, Meta(ge=0, le=INT32_MAX)]
    if key == "length":
        return Annotated[float, Meta(ge=0.0, le=limits.max_song_length_s, description="seconds")]
    if key == "userId":
        return Annotated[str, Meta(min_length=1, max_length=limits.max_string_length)]
    if base is str:
        return Annotated[str, Meta(max_length=limits.max_string_length)]
    raise TypeError(f"raw key {key!r} has no API type rule")  # a new raw key must get one here


@dataclass(frozen=True)
class Schemas:
    """The msgspec types of one service (ranges depend on the packaged model) and their decoders."""

    event: type[msgspec.Struct]
    predict_request: type[msgspec.Struct]
    batch_user: type[msgspec.Struct]
    batch_request: type[msgspec.Struct]
    predict_decoder: msgspec.json.Decoder[Any]
    batch_decoder: msgspec.json.Decoder[Any]


def build_schemas(limits: ApiLimits) -> Schemas:
    """Generate the request structs for ``limits`` (one raw key → one field, in ``RAW_KEYS`` order)."""
    required = [(k, _field_type(k, limits)) for k in RAW_KEYS if k in REQUIRED_RAW_KEYS]
    optional = [(k, _field_type(k, limits) | None, None) for k in RAW_KEYS if k not in REQUIRED_RAW_KEYS]
    event = msgspec.defstruct(
        "Event", [*required, *optional], forbid_unknown_fields=True, gc=False, kw_only=True
    )
    cutoff_type = (
        Annotated[int, Meta(ge=limits.min_ts_ms, le=limits.max_ts_ms, description="epoch ms")]
        | datetime
        | None
    )
    events_type = Annotated[list[event], Meta(min_length=1)]  # type: ignore[valid-type]
    predict = msgspec.defstruct(
        "PredictRequest",
        [
            ("events", events_type),
            ("cutoff", cutoff_type, None),
            ("explain", bool, True),
            ("include_features", bool, False),
        ],
        forbid_unknown_fields=True,
        kw_only=True,
    )
    batch_user = msgspec.defstruct(
        "BatchUser",
        [("events", events_type), ("cutoff", cutoff_type, None)],
        forbid_unknown_fields=True,
        kw_only=True,
    )
    users_type = Annotated[list[batch_user], Meta(min_length=1)]  # type: ignore[valid-type]
    batch_fields: list[Any] = [
        ("users", users_type | None, None),
        ("events", events_type | None, None),
        ("cutoff", cutoff_type, None),
        ("explain", bool, False),
        ("include_features", bool, False),
    ]
    batch = msgspec.defstruct("BatchRequest", batch_fields, forbid_unknown_fields=True, kw_only=True)
    return Schemas(
        event=event,
        predict_request=predict,
        batch_user=batch_user,
        batch_request=batch,
        predict_decoder=msgspec.json.Decoder(predict),
        batch_decoder=msgspec.json.Decoder(batch),
    )


# ------------------------------------------------------------------------------------------ responses


class Reason(msgspec.Struct, kw_only=True):
    """One feature's signed contribution to the log-odds (positive raises the churn risk)."""

    feature: str
    value: float | None = msgspec.field(default=None)  # NaN (undefined feature) is sent as null
    contribution: float
    direction: Literal["raises", "lowers"]


class PredictResponse(msgspec.Struct, kw_only=True):
    """One user's calibrated churn probability, the decision at the model's threshold, and why."""

    user_id: str
    churn_probability: Annotated[float, Meta(ge=0.0, le=1.0)]
    churn_prediction: Annotated[int, Meta(ge=0, le=1)]
    threshold: float
    risk_level: RiskLevel
    top_reasons: list[Reason] | None = None  # null when the request asked for no explanation
    prediction_id: str
    model_version: str
    model_alias: str
    n_events: int
    cutoff: str
    feature_count: int
    features: dict[str, float | None] | None = None


class ErrorBody(msgspec.Struct, kw_only=True, omit_defaults=False):
    """A 4xx answer: what is wrong and where (``field``: raw key or request field; ``index``: event)."""

    error: str
    field: str | None = None
    index: int | None = None
    path: str | None = None


class BatchItem(msgspec.Struct, kw_only=True):
    """One user of a batch: a result, or an error that does not fail the other users."""

    position: int
    user_id: str | None
    ok: bool
    result: PredictResponse | None = None
    error: ErrorBody | None = None


class BatchResponse(msgspec.Struct, kw_only=True):
    """One item per user, in request order (users form) or sorted by user id (events form)."""

    results: list[BatchItem]
    n_users: int
    n_ok: int
    n_failed: int
    model_version: str
    model_alias: str


class HealthResponse(msgspec.Struct, kw_only=True):
    """Liveness with substance: is the model loaded, which one, since when."""

    status: Literal["ok"]
    model_loaded: bool
    registered_model: str
    model_version: str
    model_alias: str
    model_sha256: str
    feature_count: int
    uptime_s: float
    worker_pid: int
    auth: Literal["api_keys", "insecure_dev"]
    rate_limit_storage: str


class ModelsResponse(msgspec.Struct, kw_only=True):
    """The served model, the registry's champion and challenger at packaging time, and honest metrics."""

    served: dict[str, Any]
    champion: dict[str, Any] | None
    challenger: dict[str, Any] | None
    evaluation: dict[str, Any]
    warnings: list[str]


# ------------------------------------------------------------------------------------------ helpers


def cutoff_to_ms(value: int | datetime | None) -> int | None:
    """Epoch ms stays as is; a datetime becomes epoch ms (naive → UTC, sub-ms rounded up); None stays."""
    if value is None or isinstance(value, int):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return -(-micros // 1000)


def ms_to_iso(ms: int) -> str:
    """Epoch ms → ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def ms_to_datetime(ms: int) -> datetime:
    """Epoch ms → aware UTC datetime (exact to the millisecond)."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
