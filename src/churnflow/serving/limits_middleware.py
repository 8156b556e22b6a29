"""One ASGI middleware in front of every route: auth, rate limits, body size, metrics and the access line.

Order for a non-public path: (1) a client address past its failed-auth budget → 429 before any key is
looked at; (2) no key → 401 (``WWW-Authenticate: Bearer``), unknown key → 403, both counted as failed
attempts of the address; (3) the key's hourly budget → 429 with ``Retry-After``; (4) ``Content-Length``
over the route's byte limit → 413 without reading, and a streamed body is cut off with 413 as soon as it
passes the limit, so nothing over the limit is ever buffered or parsed. Public paths (probes, the OpenAPI
document) skip 1–3. Every request is counted under a bounded ``endpoint`` label; every 4xx/5xx writes ONE
INFO line (method, endpoint, status, reason category, client, key id) and never the body.
In insecure-dev mode (no keys) steps 1–2 are skipped and the budget is per client address.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import msgspec

from churnflow.serving.auth import KeyRing, extract_key
from churnflow.serving.metrics import endpoint_label, service_metrics
from churnflow.serving.ratelimit import Decision, RateLimits, StorageUnavailable

logger = logging.getLogger("churnflow.serving.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths that need no key: orchestrator probes, the OpenAPI document and BentoML's docs page.
DEFAULT_PUBLIC_PATHS: tuple[str, ...] = ("/livez", "/readyz", "/healthz", "/docs.json", "/")
PUBLIC_PREFIXES: tuple[str, ...] = ("/static_content/",)
_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})
_STATE_KEY = "churnflow"


class BodyTooLarge(Exception):
    """Raised by the limited ``receive`` once the streamed body passes the byte limit (``limit`` bytes)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body exceeds {limit} bytes")
        self.limit = limit


def set_reason(scope: Scope, kind: str, path: str | None) -> None:
    """Record why a request failed (a category and the request field path, no values) for the access line."""
    scope.setdefault("state", {})
    scope["state"][_STATE_KEY] = {"reason": kind, "path": path}


def _error(message: str, **extra: Any) -> bytes:
    return msgspec.json.encode({"error": message, "field": None, "index": None, "path": None, **extra})


class GuardMiddleware:
    """See the module docstring. ``keyring`` None means insecure-dev mode (no keys)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        keyring: KeyRing | None,
        limits: RateLimits,
        default_requests_per_hour: int,
        max_body_bytes: int,
        max_batch_body_bytes: int,
        batch_paths: Iterable[str] = ("/predict/batch",),
        public_paths: Iterable[str] = DEFAULT_PUBLIC_PATHS,
    ) -> None:
        """Hold the keys (as digests), the limiters and the byte limits of this worker."""
        self.app = app
        self.keyring = keyring
        self.limits = limits
        self.default_rph = default_requests_per_hour
        self.max_body_bytes = max_body_bytes
        self.max_batch_body_bytes = max_batch_body_bytes
        self.batch_paths = frozenset(batch_paths)
        self.public_paths = frozenset(public_paths)

    def _is_public(self, path: str) -> bool:
        return path in self.public_paths or path.startswith(PUBLIC_PREFIXES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Guard HTTP requests; pass anything else (lifespan) through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        path = scope.get("path", "")
        endpoint = endpoint_label(path)
        outcome: dict[str, Any] = {"status": 500, "started": False, "key_id": "-", "reason": None}

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome["status"] = int(message["status"])
                outcome["started"] = True
            await send(message)

        try:
            await self._guard(scope, receive, tracking_send, path, outcome)
        except BodyTooLarge as exc:  # a route that does not answer 413 itself
            if not outcome["started"]:
                outcome["reason"] = "body too large"
                await _send(tracking_send, 413, _error(str(exc), field="body"))
        finally:
            status = outcome["status"]
            metrics = service_metrics()
            metrics.requests.labels(endpoint=endpoint, status=str(status)).inc()
            metrics.latency.labels(endpoint=endpoint, status=str(status)).observe(time.perf_counter() - start)
            if status >= 400:
                self._log(scope, endpoint, status, outcome, start)

    def _byte_limit(self, path: str) -> int:
        return self.max_batch_body_bytes if path in self.batch_paths else self.max_body_bytes

    async def _guard(
        self, scope: Scope, receive: Receive, send: Send, path: str, outcome: dict[str, Any]
    ) -> None:
        if self._is_public(path):
            await self.app(scope, receive, send)
            return
        address = (scope.get("client") or ("unknown", 0))[0] or "unknown"
        try:
            decision = await self._authorise(scope, send, address, outcome)
        except StorageUnavailable:
            logger.error("rate-limit storage unavailable; refusing requests")
            outcome["reason"] = "rate-limit storage unavailable"
            await _send(
                send, 503, _error("rate-limit storage unavailable, retry later"), [(b"retry-after", b"5")]
            )
            return
        if decision is None:  # an auth answer was already sent
            return
        if not decision.allowed:
            outcome["reason"] = "rate limit"
            headers = [(b"retry-after", str(decision.retry_after_s).encode())]
            headers.append((b"x-ratelimit-limit", str(decision.limit).encode()))
            await _send(
                send, 429, _error("rate limit exceeded", retry_after_s=decision.retry_after_s), headers
            )
            return
        limit = self._byte_limit(path)
        length = _content_length(scope)
        if length is not None and length > limit:
            outcome["reason"] = "body too large"
            await _send(
                send, 413, _error(f"request body of {length} bytes exceeds {limit} bytes", field="body")
            )
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)

    async def _authorise(
        self, scope: Scope, send: Send, address: str, outcome: dict[str, Any]
    ) -> Decision | None:
        """The rate-limit decision for this request, or None when a 401/403/429 for auth was sent."""
        if self.keyring is None:
            return await self.limits.hit_key(f"addr:{address}", self.default_rph)
        blocked = await self.limits.auth_blocked(address)
        if not blocked.allowed:
            outcome["reason"] = "failed-auth throttle"
            await _send(
                send,
                429,
                _error(
                    "too many failed authentication attempts from this address",
                    retry_after_s=blocked.retry_after_s,
                ),
                [(b"retry-after", str(blocked.retry_after_s).encode())],
            )
            return None
        presented = extract_key(scope.get("headers", []))
        key = self.keyring.lookup(presented) if presented is not None else None
        if key is None:
            await self.limits.record_failed_auth(address)
            if presented is None:
                outcome["reason"] = "missing key"
                await _send(
                    send,
                    401,
                    _error("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"),
                    [(b"www-authenticate", b'Bearer realm="churnflow"')],
                )
            else:
                outcome["reason"] = "wrong key"
                await _send(send, 403, _error("API key not accepted"))
            return None
        outcome["key_id"] = key.key_id
        return await self.limits.hit_key(key.key_id, key.requests_per_hour)

    def _log(self, scope: Scope, endpoint: str, status: int, outcome: dict[str, Any], start: float) -> None:
        state = (scope.get("state") or {}).get(_STATE_KEY) or {}
        reason = outcome["reason"] or state.get("reason") or ("not found" if status == 404 else "http error")
        field_path = state.get("path")
        method = scope.get("method", "")
        client = (scope.get("client") or ("unknown", 0))[0]
        logger.info(
            "%s %s %d %.1fms reason=%r%s client=%s key=%s",
            method if method in _METHODS else "OTHER",
            endpoint,
            status,
            (time.perf_counter() - start) * 1000,
            reason,
            f" at={field_path}" if field_path else "",
            client,
            outcome["key_id"],
        )


def _content_length(scope: Scope) -> int | None:
    """The declared Content-Length (None when absent or not a number; the stream limit still applies)."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Send a complete JSON response."""
    all_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    all_headers.extend(headers or [])
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})
