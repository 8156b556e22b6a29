"""Score raw events with a packaged churn model: one user online (``/predict``), many users in one batch.

Request bodies are decoded by msgspec into the generated structs of :mod:`churnflow.serving.schemas`
(types and ranges checked while parsing), then checked for meaning (one user per request, every event
before the cutoff, timestamps inside the run's bounds) and turned into the events table's typed frame.
Online features come from :func:`churnflow.features.compute_features_online` (one user, the request path),
batches from :func:`churnflow.features.compute_features` (one pass for all users); probabilities from
:meth:`ChurnModel.predict_proba_matrix` (calibrated), reasons from
:func:`churnflow.models.contributions.feature_contributions`. No I/O.
Invariants: the cutoff defaults to the last event's ``ts`` + 1 ms; ``churn_prediction ==
(churn_probability >= threshold)``; any client input either scores or raises :class:`RequestError` (4xx).
"""

from __future__ import annotations

import operator
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
import numpy as np
import polars as pl

from churnflow.data.load import EVENT_DTYPES, RAW_DTYPES, SORT_KEYS
from churnflow.data.schema import RAW_KEYS, RAW_TO_COLUMN
from churnflow.features import FeatureInputError, compute_features, compute_features_online
from churnflow.models.artifact import ChurnModel
from churnflow.models.contributions import feature_contributions, top_reasons
from churnflow.serving.schemas import (
    BatchItem,
    BatchResponse,
    ErrorBody,
    PredictResponse,
    Reason,
    Schemas,
    build_schemas,
    cutoff_to_ms,
    ms_to_datetime,
    ms_to_iso,
)
from churnflow.serving.settings import ServingSettings

_GETTERS = {key: operator.attrgetter(key) for key in RAW_KEYS}
SCORE_COLUMNS: tuple[str, ...] = ("user_id", "cutoff", "churn_probability", "churn_prediction", "risk_level")
_AT_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
_NAMED = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")
_INDEX = re.compile(r"\[(\d+)\]")
#: msgspec message starts → a reason category that carries no request content (for logs).
_KINDS: tuple[tuple[str, str], ...] = (
    ("Object missing required field", "missing field"),
    ("Object contains unknown field", "unknown field"),
    ("Invalid enum value", "value not allowed"),
    ("Invalid RFC3339", "not an ISO 8601 time"),
    ("Expected `array` of length", "wrong length"),
    ("Expected `str` of length", "string too long"),
    ("Expected `object`", "wrong type"),
    ("Expected `", "wrong type or out of range"),
    ("JSON is malformed", "malformed JSON"),
    ("Input data was truncated", "malformed JSON"),
)


class RequestError(ValueError):
    """A client error: HTTP ``status``, a message naming the ``field`` (and event ``index``) at fault.

    ``kind`` is a short category without any request content, for the one-line log.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str,
        field: str | None = None,
        index: int | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.field = field
        self.index = index
        self.path = path

    def body(self) -> ErrorBody:
        """The JSON error body."""
        return ErrorBody(error=self.message, field=self.field, index=self.index, path=self.path)

    @classmethod
    def from_msgspec(cls, exc: msgspec.DecodeError, prefix: str = "") -> RequestError:
        """Map a msgspec decode/validation error to a 400 naming the path (``events[3].ts``)."""
        text = str(exc)
        match = _AT_PATH.search(text)
        path = (prefix + match.group(1)) if match else (prefix.rstrip(".") or None)
        head = text[: match.start()] if match else text
        named = _NAMED.findall(head) if head.startswith("Object ") else []
        if named:  # missing/unknown field: the path is the object, the field is the named key
            path = f"{path}.{named[0]}" if path else named[0]
        field = path.rsplit(".", 1)[-1] if path else None
        field = _INDEX.sub("", field) if field else None
        indexes = _INDEX.findall(path or "")
        index = int(indexes[-1]) if indexes and ".events[" in f".{path}" else None
        kind = next((k for start, k in _KINDS if head.startswith(start)), "invalid body")
        if not isinstance(exc, msgspec.ValidationError):
            kind, path, field, index = "malformed JSON", None, None, None
        return cls(
            400, text if path is None else f"{path}: {head}", kind=kind, field=field, index=index, path=path
        )


@dataclass
class StageTimer:
    """Seconds spent per stage of one request (``read_body``, ``decode``, ``features``, ...)."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Add the time spent inside the block to ``name``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


@dataclass(frozen=True)
class UserEvents:
    """One user's decoded events, checked, with the cutoff to score at."""

    user_id: str
    events: Sequence[Any]
    cutoff_ms: int


# ------------------------------------------------------------------------------------------ frames


def events_frame(events: Sequence[Any]) -> pl.DataFrame:
    """Decoded event structs → an events frame the feature engine reads, sorted like the events table.

    Columns are named as in the events table (``RAW_TO_COLUMN``); ``ts`` and ``registration`` become
    ``Datetime(ms, UTC)`` as the loader writes them (registration rounded to the millisecond), the other
    columns keep the loader's decoded types (String/Int64/Float64: the feature engine reads either those or
    the table's Enum/Categorical narrowing, with the same result), plus ``source_line`` (position in the
    request). Invariant: cast to the events table's dtypes it equals
    :func:`churnflow.data.load.normalize_records` of the same events (a test checks it).
    """
    series: list[pl.Series] = []
    for key in RAW_KEYS:
        column, raw_dtype = RAW_TO_COLUMN[key], RAW_DTYPES[key]
        values = pl.Series(column, list(map(_GETTERS[key], events)), dtype=raw_dtype)
        target = EVENT_DTYPES.get(column)
        if isinstance(target, pl.Datetime):  # epoch ms (a float rounds as in the loader)
            ms = values.round(0).cast(pl.Int64) if raw_dtype == pl.Float64 else values
            values = ms.cast(pl.Datetime(target.time_unit, target.time_zone))
        series.append(values)
    n = len(events)
    series.append(pl.Series("source_line", np.arange(n, dtype=np.int64)).cast(EVENT_DTYPES["source_line"]))
    frame = pl.DataFrame(series)
    ts = np.fromiter(map(_GETTERS["ts"], events), dtype=np.int64, count=n)
    if n > 1 and not bool((ts[1:] > ts[:-1]).all()):  # ties or disorder: sort into the table's order
        frame = frame.sort([key for key in SORT_KEYS if key in frame.columns])
    return frame


# ------------------------------------------------------------------------------------------ checks


def check_user_events(
    events: Sequence[Any],
    cutoff: int | datetime | None,
    min_ts_ms: int,
    max_ts_ms: int,
    where: str = "",
    positions: Sequence[int] | None = None,
) -> UserEvents:
    """Semantic checks of one user's decoded events; RequestError (400) naming the field otherwise.

    One non-empty ``userId``; a cutoff inside ``[min_ts_ms, max_ts_ms]`` (default: last ts + 1 ms) and
    after the first event; every event strictly before the cutoff. ``where`` prefixes the error paths
    (``users[2].``); ``positions`` maps each event to its index in the request (default: its own index).
    """
    pos = positions if positions is not None else range(len(events))
    first_user = events[0].userId
    for i, event in enumerate(events):
        if event.userId != first_user:
            raise RequestError(
                400,
                f"{where}events[{pos[i]}].userId: a request holds ONE user's events "
                f"(events[{pos[0]}] has another userId)",
                kind="several users",
                field="userId",
                index=pos[i],
                path=f"{where}events[{pos[i]}].userId",
            )
    ts = [event.ts for event in events]
    cutoff_ms = cutoff_to_ms(cutoff)
    if cutoff_ms is None:
        cutoff_ms = max(ts) + 1
    elif not min_ts_ms <= cutoff_ms <= max_ts_ms:
        raise RequestError(
            400,
            f"{where}cutoff: must lie between {ms_to_iso(min_ts_ms)} and {ms_to_iso(max_ts_ms)} "
            "(the data's valid time range)",
            kind="cutoff out of range",
            field="cutoff",
            path=f"{where}cutoff",
        )
    first = min(ts)
    if cutoff_ms <= first:
        raise RequestError(
            400,
            f"{where}cutoff: {ms_to_iso(cutoff_ms)} is not after the user's first event "
            f"({ms_to_iso(first)}): there is no history to score",
            kind="cutoff before first event",
            field="cutoff",
            path=f"{where}cutoff",
        )
    late = next((i for i, t in enumerate(ts) if t >= cutoff_ms), None)
    if late is not None:
        raise RequestError(
            400,
            f"{where}events[{pos[late]}].ts: at or after the cutoff {ms_to_iso(cutoff_ms)}; send only "
            "events before the cutoff",
            kind="event after cutoff",
            field="ts",
            index=pos[late],
            path=f"{where}events[{pos[late]}].ts",
        )
    return UserEvents(str(first_user), events, cutoff_ms)


# ------------------------------------------------------------------------------------------ scorer


class Scorer:
    """The served model with its settings and request types; turns request bodies into responses."""

    def __init__(self, model: ChurnModel, settings: ServingSettings) -> None:
        """``model``'s feature names must equal ``settings.feature_names`` (checked by the loader)."""
        self.model = model
        self.settings = settings
        self.limits = settings.limits()
        self.schemas: Schemas = build_schemas(self.limits)
        self.feature_names = list(model.feature_names)

    # -- decoding
    def decode_predict(self, body: bytes) -> tuple[Any, UserEvents]:
        """``/predict`` body → (decoded request, checked user events); RequestError (400/413)."""
        try:
            request = self.schemas.predict_decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise RequestError.from_msgspec(exc) from None
        n = len(request.events)
        if n > self.limits.max_events_per_request:
            raise RequestError(
                413,
                f"events: {n} events exceed max_events_per_request={self.limits.max_events_per_request}",
                kind="too many events",
                field="events",
                path="events",
            )
        return request, check_user_events(
            request.events, request.cutoff, self.limits.min_ts_ms, self.limits.max_ts_ms
        )

    # -- scoring
    def predict(self, body: bytes, timer: StageTimer) -> tuple[PredictResponse, np.ndarray]:
        """Score one user's events (``/predict``): the response and the scored feature row (1 × n)."""
        with timer.stage("decode"):
            request, user = self.decode_predict(body)
        with timer.stage("frame"):
            frame = events_frame(user.events)
        with timer.stage("features"):
            try:
                values = compute_features_online(
                    frame, ms_to_datetime(user.cutoff_ms), self.settings.features
                )
            except FeatureInputError as exc:  # input the checks above let through: still the client's
                raise RequestError(400, f"events: {exc}", kind="feature input", field="events") from None
            matrix = np.array([[values[name] for name in self.feature_names]], dtype=np.float64)
        with timer.stage("predict"):
            probability = self._probabilities(matrix)
        contributions = None
        if request.explain:
            with timer.stage("explain"):
                contributions = feature_contributions(self.model, matrix)
        response = self._response(
            user,
            float(probability[0]),
            None if contributions is None else contributions[0],
            matrix[0],
            values if request.include_features else None,
        )
        return response, matrix

    def predict_batch(self, body: bytes, timer: StageTimer) -> tuple[BatchResponse, np.ndarray | None]:
        """Score many users (``/predict/batch``): per-user errors become error items, not a failed batch.

        Returns the response and the scored feature rows (None when no user could be scored).
        """
        with timer.stage("decode"):
            try:
                request = self.schemas.batch_decoder.decode(body)
            except msgspec.DecodeError as exc:
                raise RequestError.from_msgspec(exc) from None
        with timer.stage("validate"):
            items, ok = self._batch_users(request)
        matrix: np.ndarray | None = None
        if ok:
            with timer.stage("frame"):
                frame = events_frame([e for user in ok.values() for e in user.events])
                cutoffs = pl.DataFrame(
                    {
                        "user_id": [user.user_id for user in ok.values()],
                        "cutoff": pl.Series([user.cutoff_ms for user in ok.values()], dtype=pl.Int64)
                        .cast(pl.Datetime("ms"))
                        .dt.replace_time_zone("UTC"),
                    }
                )
            with timer.stage("features"):
                try:
                    features = compute_features(frame, cutoffs, self.settings.features)
                except FeatureInputError as exc:
                    raise RequestError(400, f"events: {exc}", kind="feature input", field="events") from None
                matrix = features.select([pl.col(n).cast(pl.Float64) for n in self.feature_names]).to_numpy()
                matrix = np.ascontiguousarray(matrix, dtype=np.float64)
            with timer.stage("predict"):
                probabilities = self._probabilities(matrix)
            contributions = None
            if request.explain:  # TreeSHAP costs ~ms per row: off by default for batches
                with timer.stage("explain"):
                    contributions = feature_contributions(self.model, matrix)
            all_names = [c for c in features.columns if c not in ("user_id", "cutoff")]
            for row, (position, user) in enumerate(ok.items()):
                values = None
                if request.include_features:
                    values = dict(zip(all_names, features.row(row)[2:], strict=True))
                items[position] = BatchItem(
                    position=position,
                    user_id=user.user_id,
                    ok=True,
                    result=self._response(
                        user,
                        float(probabilities[row]),
                        None if contributions is None else contributions[row],
                        matrix[row],
                        values,
                    ),
                )
        results = [items[i] for i in sorted(items)]
        n_ok = sum(item.ok for item in results)
        response = BatchResponse(
            results=results,
            n_users=len(results),
            n_ok=n_ok,
            n_failed=len(results) - n_ok,
            model_version=self.settings.model_version,
            model_alias=self.settings.model_alias,
        )
        return response, matrix

    def _batch_users(self, request: Any) -> tuple[dict[int, BatchItem], dict[int, UserEvents]]:
        """Check each user of a decoded batch: (error items by position, checked users by position).

        The body as a whole must match the schema (else 400); what only makes sense per user (several
        userIds in one entry, events at or after the cutoff, a user twice) becomes that user's error item.
        """
        if (request.users is None) == (request.events is None):
            raise RequestError(
                400,
                "send exactly one of 'users' (a list of {events, cutoff}) or 'events' (many users' events)",
                kind="users or events",
                field="users",
                path="users",
            )
        lim = self.limits
        groups: list[tuple[str, Sequence[Any], Any, list[int] | None]] = []
        if request.users is not None:
            for i, user in enumerate(request.users):
                groups.append((f"users[{i}].", user.events, user.cutoff, None))
        else:
            by_user: dict[str, list[int]] = {}
            for i, event in enumerate(request.events):
                by_user.setdefault(event.userId, []).append(i)
            for user_id in sorted(by_user):
                positions = by_user[user_id]
                groups.append(("", [request.events[i] for i in positions], request.cutoff, positions))
        if len(groups) > lim.max_batch_users:
            raise RequestError(
                413,
                f"{len(groups)} users exceed max_batch_users={lim.max_batch_users}",
                kind="too many users",
                field="users",
                path="users",
            )
        n_events = sum(len(events) for _, events, _, _ in groups)
        if n_events > lim.max_batch_events:
            raise RequestError(
                413,
                f"{n_events} events exceed max_batch_events={lim.max_batch_events}",
                kind="too many events",
                field="events",
                path="events",
            )
        items: dict[int, BatchItem] = {}
        ok: dict[int, UserEvents] = {}
        seen: set[str] = set()
        for position, (where, events, cutoff, positions) in enumerate(groups):
            try:
                user = check_user_events(events, cutoff, lim.min_ts_ms, lim.max_ts_ms, where, positions)
                if user.user_id in seen:
                    raise RequestError(
                        400,
                        f"{where}events[0].userId: this user already appears in an earlier entry "
                        "of the batch",
                        kind="duplicate user",
                        field="userId",
                        path=f"{where}events[0].userId",
                        index=0,
                    )
                seen.add(user.user_id)
                ok[position] = user
            except RequestError as exc:
                items[position] = BatchItem(
                    position=position, user_id=str(events[0].userId), ok=False, error=exc.body()
                )
        return items, ok

    def _probabilities(self, matrix: np.ndarray) -> np.ndarray:
        """Calibrated P(churn) per row; RuntimeError if the model answers outside [0, 1]."""
        probabilities = np.asarray(self.model.predict_proba_matrix(matrix), dtype=np.float64).reshape(-1)
        if probabilities.shape[0] != matrix.shape[0] or not np.all(
            (probabilities >= 0) & (probabilities <= 1)
        ):
            raise RuntimeError("the model returned probabilities outside [0, 1] or of the wrong length")
        return probabilities

    def _response(
        self,
        user: UserEvents,
        probability: float,
        contributions: np.ndarray | None,
        values: np.ndarray,
        all_features: dict[str, float] | None,
    ) -> PredictResponse:
        reasons = None
        if contributions is not None:
            found = top_reasons(contributions, values, self.feature_names, self.settings.serve.top_reasons)
            reasons = [Reason(**r) for r in found]
        return PredictResponse(
            user_id=user.user_id,
            churn_probability=probability,
            churn_prediction=int(probability >= self.settings.threshold),
            threshold=self.settings.threshold,
            risk_level=self.settings.risk_bands.level(probability),  # type: ignore[arg-type]
            top_reasons=reasons,
            prediction_id=uuid.uuid4().hex,
            model_version=self.settings.model_version,
            model_alias=self.settings.model_alias,
            n_events=len(user.events),
            cutoff=ms_to_iso(user.cutoff_ms),
            feature_count=len(self.feature_names),
            features=None if all_features is None else {k: _finite(v) for k, v in all_features.items()},
        )

    # -- batch files (``churnflow score``)
    def score_events_frame(self, events: pl.DataFrame) -> pl.DataFrame:
        """Score every user of a normalised events frame at (their last event ts + 1 ms), offline features.

        Returns :data:`SCORE_COLUMNS` sorted by ``user_id``.
        """
        if events.height == 0:
            raise ValueError("no events to score")
        cutoffs = (
            events.filter(pl.col("user_id").is_not_null() & (pl.col("user_id") != ""))
            .group_by("user_id")
            .agg((pl.col("ts").max() + pl.duration(milliseconds=1)).alias("cutoff"))
            .sort("user_id")
        )
        features = compute_features(events, cutoffs, self.settings.features).sort("user_id")
        matrix = features.select([pl.col(n).cast(pl.Float64) for n in self.feature_names]).to_numpy()
        probs = self._probabilities(np.ascontiguousarray(matrix, dtype=np.float64))
        return pl.DataFrame(
            {
                "user_id": features.get_column("user_id"),
                "cutoff": features.get_column("cutoff"),
                "churn_probability": probs,
                "churn_prediction": (probs >= self.settings.threshold).astype(np.int8),
                "risk_level": self.settings.risk_bands.levels(probs),
            }
        )


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)
