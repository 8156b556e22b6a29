"""The HTTP endpoints as a plain Starlette app (mounted into the BentoML service at ``/``).

Why not ``@bentoml.api``: BentoML parses the body with pydantic before the endpoint runs and logs every
validation error as an ERROR traceback; here the body bytes go straight to msgspec (typed, ranged), errors
become one-line 400s, and every stage is timed. Endpoints: ``POST /predict`` (alias ``/predict/user``),
``POST /predict/batch``, ``GET /health``, ``GET /models``, ``GET /metrics``, ``GET /docs.json``.
Invariant: a handler answers 2xx or a JSON 4xx for any client input; only a bug answers 500 (logged with
its traceback, never with the body).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import msgspec
import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from churnflow.serving.limits_middleware import BodyTooLarge, set_reason
from churnflow.serving.loading import ServedModel
from churnflow.serving.metrics import CONTENT_TYPE, exposition, service_metrics
from churnflow.serving.schemas import ErrorBody, HealthResponse, ModelsResponse
from churnflow.serving.scoring import RequestError, Scorer, StageTimer

logger = logging.getLogger("churnflow.serving")
JSON = "application/json"
_ENCODER = msgspec.json.Encoder()


@dataclass
class ServiceState:
    """What the endpoints read: the loaded model, its scorer, the OpenAPI document and how auth runs."""

    served: ServedModel
    scorer: Scorer
    openapi: bytes
    auth_mode: str  # "api_keys" | "insecure_dev"
    rate_limit_storage: str  # redacted URI
    started: float
    drift: Any = None  # churnflow.monitoring.online.RollingDrift (None without a drift reference)
    drift_lock: threading.Lock = field(default_factory=threading.Lock)

    def update_drift(self, matrix: np.ndarray) -> None:
        """Feed scored rows to the rolling drift score and publish it (no-op without a drift tracker).

        The tracker is not thread-safe and batches are scored in a worker thread: one lock serialises it.
        """
        if self.drift is None:
            return
        with self.drift_lock:
            score = self.drift.update(matrix, self.scorer.feature_names)
        if np.isfinite(score):
            service_metrics().drift.set(float(score))


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """msgspec-encoded JSON response."""
    return Response(_ENCODER.encode(payload), status_code=status, media_type=JSON, headers=headers)


def error_response(request: Request, exc: RequestError) -> Response:
    """A 4xx JSON body; the reason category goes to the access line (never the body's content)."""
    set_reason(request.scope, exc.kind, None if exc.kind == "unknown field" else exc.path)
    return json_response(exc.body(), exc.status)


def _content_type_ok(request: Request) -> bool:
    """JSON or no Content-Type at all (curl without -H); anything else is 415."""
    ctype = request.headers.get("content-type")
    if ctype is None:
        return True
    media = ctype.split(";", 1)[0].strip().lower()
    return media == JSON or (media.startswith("application/") and media.endswith("+json"))


def build_app(get_state: Callable[[], ServiceState]) -> Starlette:
    """The Starlette app; ``get_state`` returns the worker's :class:`ServiceState` (set at start-up)."""

    async def _score(request: Request, batch: bool) -> Response:
        if not _content_type_ok(request):
            return error_response(
                request,
                RequestError(415, "send the body as application/json", kind="unsupported media type"),
            )
        state = get_state()
        timer = StageTimer()
        with timer.stage("read_body"):
            body = await request.body()
        metrics = service_metrics()
        try:
            if batch:
                result, matrix = await anyio.to_thread.run_sync(state.scorer.predict_batch, body, timer)
                responses = [item.result for item in result.results if item.result is not None]
            else:
                result, matrix = state.scorer.predict(body, timer)
                responses = [result]
        except RequestError as exc:
            return error_response(request, exc)
        with timer.stage("encode"):
            payload = _ENCODER.encode(result)
        for response in responses:
            metrics.predictions.labels(risk_level=response.risk_level).inc()
            metrics.probability.observe(response.churn_probability)
        for stage, seconds in timer.seconds.items():
            metrics.stage_seconds.labels(stage=stage).observe(seconds)
        if matrix is not None:
            state.update_drift(matrix)
        return Response(payload, media_type=JSON)

    async def predict(request: Request) -> Response:
        """One user's raw events → calibrated churn probability, decision, risk band, top reasons."""
        return await _guarded(request, lambda: _score(request, batch=False))

    async def predict_batch(request: Request) -> Response:
        """Many users → one result or one error per user."""
        return await _guarded(request, lambda: _score(request, batch=True))

    async def health(request: Request) -> Response:
        state = get_state()
        s = state.served.settings
        return json_response(
            HealthResponse(
                status="ok",
                model_loaded=True,
                registered_model=s.registered_model,
                model_version=s.model_version,
                model_alias=s.model_alias,
                model_sha256=s.model_sha256,
                feature_count=len(s.feature_names),
                uptime_s=round(time.monotonic() - state.started, 3),
                worker_pid=os.getpid(),
                auth=state.auth_mode,  # type: ignore[arg-type]
                rate_limit_storage=state.rate_limit_storage,
            )
        )

    async def models(request: Request) -> Response:
        s = get_state().served.settings
        info = s.models_info
        served = {
            **info["served"],
            "version": s.model_version,
            "tag": get_state().served.tag,
            "threshold": s.threshold,
            "feature_count": len(s.feature_names),
            "features": list(s.feature_names),
        }
        return json_response(
            ModelsResponse(
                served=served,
                champion=info["champion"],
                challenger=info["challenger"],
                evaluation=info["evaluation"],
                warnings=list(s.warnings),
            )
        )

    async def metrics_endpoint(request: Request) -> Response:
        return Response(exposition(), media_type=CONTENT_TYPE)

    async def docs(request: Request) -> Response:
        return Response(get_state().openapi, media_type=JSON)

    return Starlette(
        routes=[
            Route("/predict", predict, methods=["POST"]),
            Route("/predict/user", predict, methods=["POST"]),
            Route("/predict/batch", predict_batch, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/models", models, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/docs.json", docs, methods=["GET"]),
        ]
    )


async def _guarded(request: Request, handler: Callable[[], Any]) -> Response:
    """Run ``handler``; an unexpected exception (a bug) becomes a logged 500 without request content."""
    try:
        return await handler()
    except BodyTooLarge as exc:  # the stream passed the byte limit: nothing was parsed
        set_reason(request.scope, "body too large", None)
        return json_response(ErrorBody(error=str(exc), field="body"), 413)
    except Exception:
        logger.exception("internal error on %s", request.url.path)
        set_reason(request.scope, "internal error", None)
        return json_response(ErrorBody(error="internal error (logged on the server)"), 500)
