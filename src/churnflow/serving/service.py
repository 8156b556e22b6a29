"""The BentoML service: the churn endpoints of :mod:`churnflow.serving.app` behind one guard middleware.

Run: ``CHURNFLOW_API_KEYS=<key>:<requests_per_hour> bentoml serve churnflow.serving.service:ChurnService
--host 127.0.0.1 --port 3000``. Start-up (this module's import, in ``bentoml serve``'s main process before any
worker starts) loads and checks the packaged model ``$CHURNFLOW_BENTO_MODEL`` (default ``churn:latest``),
the API keys and the rate-limit storage; any failure prints ONE line and exits with status 2, so a corrupt
model never leaves a worker restarting behind an open port. Without keys the service refuses to start
unless ``CHURNFLOW_INSECURE_DEV=1`` (then it says so loudly). BentoML's own per-path traffic metrics and
access log are off (the guard middleware counts requests under bounded labels and logs one line per
error), and so is its tracing middleware (no exporter is configured; it only cost time).
"""

from __future__ import annotations

import logging
import time

import bentoml
import msgspec

from churnflow.monitoring.online import RollingDrift
from churnflow.serving.app import ServiceState, build_app
from churnflow.serving.limits_middleware import GuardMiddleware
from churnflow.serving.loading import MODEL_TAG_ENV, ServedModel
from churnflow.serving.metrics import service_metrics
from churnflow.serving.openapi import build_openapi
from churnflow.serving.ratelimit import RateLimits, redacted
from churnflow.serving.scoring import Scorer
from churnflow.serving.startup import prepare_or_exit

logger = logging.getLogger("churnflow.serving")

STARTUP = prepare_or_exit()


def _state() -> ServiceState:
    """The current worker's state (BentoML creates one ChurnService instance per worker)."""
    return bentoml.get_current_service().state  # type: ignore[no-any-return]


@bentoml.service(
    name="churn_service",
    workers=STARTUP.workers,
    traffic={"timeout": 60},
    metrics={"enabled": False},
    logging={"access": {"enabled": False}},
    # no trace exporter is configured: BentoML's tracing middleware would only add ~20 spans per request
    tracing={"excluded_urls": ["/"]},
    envs=[
        *(
            {"name": name, "value": str(STARTUP.served.settings.serve.threads_per_worker)}
            for name in ("OMP_NUM_THREADS", "POLARS_MAX_THREADS")
        ),
        {"name": MODEL_TAG_ENV, "value": STARTUP.served.tag},  # a built Bento serves the model it bundles
    ],
)
@bentoml.asgi_app(build_app(_state), path="/")
class ChurnService:
    """Churn scores for raw event histories; everything it needs comes from the Bento model's metadata."""

    bento_model = bentoml.models.BentoModel(STARTUP.served.tag)

    def __init__(self) -> None:
        """Build this worker's scorer, OpenAPI document, drift tracker and model-info metric."""
        _enable_logging()
        served = STARTUP.served
        settings = served.settings
        scorer = Scorer(served.model, settings)
        self.state = ServiceState(
            served=served,
            scorer=scorer,
            openapi=msgspec.json.encode(build_openapi(scorer.schemas, settings)),
            auth_mode="api_keys" if STARTUP.keyring is not None else "insecure_dev",
            rate_limit_storage=redacted(STARTUP.storage),
            started=time.monotonic(),
            drift=_drift_tracker(served),
        )
        metrics = service_metrics()
        metrics.model_info.labels(
            registered_model=settings.registered_model,
            version=settings.model_version,
            alias=settings.model_alias,
        ).set(1)
        logger.info(
            "serving %s v%s (@%s, %s): %d features, threshold %.4f, auth %s from %s, rate limits in %s",
            settings.registered_model,
            settings.model_version,
            settings.model_alias,
            served.tag,
            len(settings.feature_names),
            settings.threshold,
            self.state.auth_mode,
            STARTUP.key_source,
            redacted(STARTUP.storage),
        )
        for warning in settings.warnings:
            logger.warning("model warning: %s", warning)


def _enable_logging() -> None:
    """Let ``churnflow.*`` INFO lines reach BentoML's handler (its dictConfig disables earlier loggers)."""
    logging.getLogger("churnflow").setLevel(logging.INFO)
    for name, item in logging.root.manager.loggerDict.items():
        if name.startswith("churnflow") and isinstance(item, logging.Logger):
            item.disabled = False


def _drift_tracker(served: ServedModel) -> RollingDrift | None:
    """The monitoring's rolling drift tracker for the packaged reference (None without a reference)."""
    if served.drift_reference is None:
        logger.warning("the packaged model has no drift reference: churnflow_input_drift_score stays unset")
        return None
    return RollingDrift.from_reference(served.drift_reference)


_serve_cfg = STARTUP.served.settings.serve
ChurnService.add_asgi_middleware(
    GuardMiddleware,
    keyring=STARTUP.keyring,
    limits=RateLimits(STARTUP.storage, _serve_cfg.failed_auth_per_minute),
    default_requests_per_hour=_serve_cfg.default_requests_per_hour,
    max_body_bytes=_serve_cfg.max_body_bytes,
    max_batch_body_bytes=_serve_cfg.max_batch_body_bytes,
)
