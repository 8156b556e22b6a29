"""The OpenAPI 3.1 document of the service, generated from the same msgspec types that decode the requests.

Every event field is typed with its range, every error status the service produces is declared with its
body (and ``Retry-After`` / ``WWW-Authenticate`` headers), and the security schemes (Bearer token or
``X-API-Key`` header) apply to every endpoint but the probes and this document.
"""

from __future__ import annotations

from typing import Any

import msgspec

from churnflow.serving.schemas import (
    BatchResponse,
    ErrorBody,
    HealthResponse,
    ModelsResponse,
    PredictResponse,
    Schemas,
)
from churnflow.serving.settings import ServingSettings

REF = "#/components/schemas/{name}"
_PUBLIC_PROBES = ("/livez", "/readyz", "/healthz")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(name=name)}


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def _errors(*statuses: int) -> dict[str, Any]:
    """Declared error answers (all with the ErrorBody schema)."""
    retry = {
        "Retry-After": {"description": "seconds to wait", "required": True, "schema": {"type": "integer"}}
    }
    text = {
        400: (
            "the body is not valid JSON, a field has the wrong type or range, or the events make no sense "
            "(several users, an event at or after the cutoff, a cutoff before the first event)",
            None,
        ),
        401: ("no API key was sent", {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}}),
        403: ("the API key is not accepted", None),
        413: (
            "the body is over the byte limit (checked before parsing) or holds too many events/users",
            None,
        ),
        415: ("the body is not application/json", None),
        429: ("the key's hourly budget or the address's failed-auth budget is used up", retry),
        503: ("the rate-limit storage cannot be reached", retry),
    }
    return {str(s): _json(_ref("ErrorBody"), text[s][0], text[s][1]) for s in statuses}


def _add_datetime_format(schema: dict[str, Any]) -> None:
    """msgspec writes a datetime in a union as a bare string; say it is an RFC 3339 date-time."""
    for prop in ("cutoff",):
        spec = schema.get("properties", {}).get(prop)
        for option in (spec or {}).get("anyOf", []):
            if option.get("type") == "string":
                option["format"] = "date-time"


def build_openapi(schemas: Schemas, settings: ServingSettings) -> dict[str, Any]:
    """The OpenAPI document (a plain dict) for one packaged model's request types and limits."""
    types = [
        schemas.predict_request,
        schemas.batch_request,
        PredictResponse,
        BatchResponse,
        ErrorBody,
        HealthResponse,
        ModelsResponse,
    ]
    _, components = msgspec.json.schema_components(types, ref_template=REF)
    for name in ("PredictRequest", "BatchUser", "BatchRequest"):
        _add_datetime_format(components[name])
    serve = settings.serve
    auth_errors = (401, 403, 429, 503)

    def post(summary: str, request: str, response: str, op: str, limit: int) -> dict[str, Any]:
        return {
            "post": {
                "operationId": op,
                "summary": summary,
                "description": f"Body limit: {limit} bytes (413 before parsing).",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(request)}}},
                "responses": {"200": _json(_ref(response), "scored"), **_errors(400, 413, 415, *auth_errors)},
            }
        }

    def get(summary: str, op: str, response: dict[str, Any], public: bool = False) -> dict[str, Any]:
        operation: dict[str, Any] = {
            "operationId": op,
            "summary": summary,
            "responses": {"200": response, **({} if public else _errors(*auth_errors))},
        }
        if public:
            operation["security"] = []
        return {"get": operation}

    text = {"description": "plain text", "content": {"text/plain": {"schema": {"type": "string"}}}}
    predict_doc = (
        "One user's raw Sparkify events (and an optional cutoff) → calibrated churn probability, "
        "the decision "
        "at the validation-chosen threshold, risk band and top reasons"
    )
    paths: dict[str, Any] = {
        "/predict": post(predict_doc, "PredictRequest", "PredictResponse", "predict", serve.max_body_bytes),
        "/predict/user": post(
            "Alias of /predict", "PredictRequest", "PredictResponse", "predict_user", serve.max_body_bytes
        ),
        "/predict/batch": post(
            "Many users: 'users' (each with its events and cutoff) or 'events' of many users; one result or "
            "error per user",
            "BatchRequest",
            "BatchResponse",
            "predict_batch",
            serve.max_batch_body_bytes,
        ),
        "/health": get(
            "Model loaded, version, feature count, uptime", "health", _json(_ref("HealthResponse"), "ok")
        ),
        "/models": get(
            "Served model, champion and challenger at packaging time, test metrics with intervals",
            "models",
            _json(_ref("ModelsResponse"), "ok"),
        ),
        "/metrics": get("Prometheus metrics (bounded labels)", "metrics", text),
        "/docs.json": get("This document", "openapi", _json({"type": "object"}, "OpenAPI 3.1"), public=True),
    }
    for probe in _PUBLIC_PROBES:
        paths[probe] = get(f"BentoML probe {probe}", probe.strip("/"), text, public=True)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "churnflow churn service",
            "version": settings.model_version,
            "description": (
                f"Serves {settings.registered_model} v{settings.model_version} (@{settings.model_alias}). "
                "Every endpoint but the probes and this document needs an API key."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer"},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "security": [{"bearerAuth": []}, {"apiKeyHeader": []}],
    }
