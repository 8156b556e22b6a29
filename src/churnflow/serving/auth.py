"""API-key check and per-key rate limit as one ASGI middleware (wraps every BentoML route).

Keys come from an environment variable (comma-separated). Unset or empty → auth is off (logged once, loudly);
requests are then rate-limited per client address instead of per key. Invariant: a request to a
non-public path reaches the app only with a known key (when auth is on) and a granted token.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import os
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from churnflow.serving.ratelimit import TokenBucketLimiter

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Probes stay open so an orchestrator can check liveness without a key.
DEFAULT_PUBLIC_PATHS: tuple[str, ...] = ("/livez", "/readyz", "/healthz")


def parse_api_keys(raw: str | None) -> frozenset[str]:
    """``"a, b,,c"`` → ``{"a", "b", "c"}``; ``None`` or blanks → empty (auth off)."""
    if not raw:
        return frozenset()
    return frozenset(k.strip() for k in raw.split(",") if k.strip())


def keys_from_env(env_var: str) -> frozenset[str]:
    """The API keys named by ``env_var`` in the process environment."""
    return parse_api_keys(os.environ.get(env_var))


def extract_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` (first wins), else None."""
    for name, value in headers:
        lname = name.lower()
        if lname == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif lname == b"x-api-key" and value.strip():
            return value.decode("latin-1").strip()
    return None


def key_is_valid(key: str | None, keys: frozenset[str]) -> bool:
    """Constant-time membership test of ``key`` in ``keys``."""
    if key is None:
        return False
    found = False
    for candidate in keys:
        found |= hmac.compare_digest(key.encode(), candidate.encode())
    return found


class ApiKeyMiddleware:
    """ASGI middleware: 401 without a valid key, 429 (with ``Retry-After``) past the rate limit."""

    def __init__(
        self,
        app: ASGIApp,
        api_keys_env: str,
        rate_limit_per_minute: int,
        public_paths: Iterable[str] = DEFAULT_PUBLIC_PATHS,
    ) -> None:
        """Read the keys from ``api_keys_env`` now (at app start-up) and build the limiter."""
        self.app = app
        self.api_keys_env = api_keys_env
        self.keys = keys_from_env(api_keys_env)
        self.public_paths = frozenset(public_paths)
        self.limiter = TokenBucketLimiter(rate_limit_per_minute)
        if self.keys:
            logger.info("API-key auth ON: %d key(s) from $%s", len(self.keys), api_keys_env)
        else:
            logger.warning("API-key auth OFF: $%s is unset or empty (local development only)", api_keys_env)

    @property
    def auth_enabled(self) -> bool:
        """True when at least one key is configured."""
        return bool(self.keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the key and the bucket for HTTP requests to non-public paths, then pass through."""
        if scope["type"] != "http" or scope.get("path", "") in self.public_paths:
            await self.app(scope, receive, send)
            return
        key = extract_key(scope.get("headers", []))
        if self.keys:
            if not key_is_valid(key, self.keys):
                reason = "missing API key" if key is None else "invalid API key"
                await _send_json(
                    send,
                    401,
                    {"error": reason, "hint": "send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"},
                    extra_headers=[(b"www-authenticate", b"Bearer")],
                )
                return
            bucket_key = f"key:{key}"
        else:
            client = scope.get("client") or ("unknown", 0)
            bucket_key = f"addr:{client[0]}"
        granted, retry_after = self.limiter.acquire(bucket_key)
        if not granted:
            seconds = max(1, math.ceil(retry_after))
            await _send_json(
                send,
                429,
                {"error": "rate limit exceeded", "retry_after_s": seconds},
                extra_headers=[(b"retry-after", str(seconds).encode())],
            )
            return
        await self.app(scope, receive, send)


async def _send_json(
    send: Send, status: int, payload: dict[str, Any], extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Send a complete JSON response."""
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers.extend(extra_headers or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
