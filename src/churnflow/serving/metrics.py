"""Prometheus metrics of the service, with bounded labels (no label value comes from the client).

``endpoint`` is one of :data:`ENDPOINTS` (any other path counts as ``other``), ``status`` an HTTP code the
service itself produced, ``risk_level`` one of three, ``stage`` one of :data:`STAGES`. BentoML's own traffic
middleware (one series per requested path) is switched off in the service config, so an anonymous client
cannot grow memory or ``/metrics``. With several workers the values are aggregated through
``$PROMETHEUS_MULTIPROC_DIR`` (set by ``bentoml serve``).
"""

from __future__ import annotations

import os
from functools import lru_cache

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

#: Every endpoint label value; requests to any other path are counted as "other".
ENDPOINTS: tuple[str, ...] = (
    "/predict",
    "/predict/user",
    "/predict/batch",
    "/health",
    "/models",
    "/metrics",
    "/docs.json",
    "/livez",
    "/readyz",
    "/healthz",
    "other",
)
#: Where the time of a prediction goes (each observed in seconds).
STAGES: tuple[str, ...] = (
    "read_body",
    "decode",
    "validate",
    "frame",
    "features",
    "predict",
    "explain",
    "encode",
)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.04,
    0.06,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
)
_STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.25, 1, 4)


def endpoint_label(path: str) -> str:
    """``path`` if it is a known endpoint, else ``other``."""
    return path if path in _ENDPOINT_SET else "other"


_ENDPOINT_SET = frozenset(ENDPOINTS)


class ServiceMetrics:
    """The metric objects of one process (create through :func:`service_metrics`)."""

    def __init__(self) -> None:
        self.requests = Counter(
            "churnflow_http_requests", "HTTP requests by endpoint and status", ["endpoint", "status"]
        )
        self.latency = Histogram(
            "churnflow_http_request_duration_seconds",
            "HTTP request latency by endpoint and status (seconds, measured inside the worker)",
            ["endpoint", "status"],
            buckets=_LATENCY_BUCKETS,
        )
        self.predictions = Counter("churnflow_predictions", "Predictions served by risk band", ["risk_level"])
        self.probability = Histogram(
            "churnflow_churn_probability",
            "Served churn probabilities",
            buckets=(0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0),
        )
        self.stage_seconds = Histogram(
            "churnflow_stage_seconds",
            "Time per request stage (features = the feature computation)",
            ["stage"],
            buckets=_STAGE_BUCKETS,
        )
        self.drift = Gauge(
            "churnflow_input_drift_score",
            "Rolling input-drift score of recent requests against the packaged drift reference",
            multiprocess_mode="mostrecent",
        )
        self.model_info = Gauge(
            "churnflow_model_info",
            "The served model (value 1)",
            ["registered_model", "version", "alias"],
            multiprocess_mode="max",
        )
        for stage in STAGES:  # series exist from the start, so rate() works on the first request
            self.stage_seconds.labels(stage=stage)


@lru_cache(maxsize=1)
def service_metrics() -> ServiceMetrics:
    """The process's metrics (prometheus_client registers each name once per process)."""
    return ServiceMetrics()


def exposition() -> bytes:
    """Prometheus text of every worker: the multiprocess collector when values live in
    ``$PROMETHEUS_MULTIPROC_DIR`` (``bentoml serve`` workers), else this process's registry."""
    from prometheus_client import REGISTRY, values

    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory and os.path.isdir(directory) and values.ValueClass is not values.MutexValue:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
