"""Rate limits with ``limits``: per API key (requests per hour) and per client address (failed auth).

Storage: ``memory://`` keeps the counters in ONE worker process (correct only with ``workers: 1``; with
more workers or replicas each would count on its own, multiplying the limit); ``redis://host:port`` keeps
them in Redis, shared by every worker and replica. Strategy: sliding-window counter (two fixed windows
weighted by overlap: O(1) memory per key, never more than the limit in any window of the configured
length, to the approximation documented by ``limits``).
Invariant: a storage that cannot be reached refuses requests (:class:`StorageUnavailable`) rather than
letting them through unlimited.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

from limits import RateLimitItemPerHour, RateLimitItemPerMinute
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

#: Environment variable that overrides ``serve.rate_limit_storage`` at deploy time.
STORAGE_ENV = "CHURNFLOW_RATE_LIMIT_STORAGE"
#: Schemes accepted for ``rate_limit_storage`` (the async client is chosen here).
SUPPORTED_SCHEMES: tuple[str, ...] = ("memory", "redis", "rediss")
_NAMESPACE = "churnflow"


class StorageUnavailable(RuntimeError):
    """The rate-limit storage did not answer (the service answers 503, never unlimited)."""


@dataclass(frozen=True)
class Decision:
    """Whether a request may proceed, and when to retry if not."""

    allowed: bool
    retry_after_s: int = 0
    limit: int = 0


def storage_uri(configured: str, environ: dict[str, str] | None = None) -> str:
    """``$CHURNFLOW_RATE_LIMIT_STORAGE`` if set, else ``configured``; ValueError for an unsupported scheme."""
    env = os.environ if environ is None else environ
    uri = (env.get(STORAGE_ENV) or configured).strip()
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if scheme not in SUPPORTED_SCHEMES:
        raise ValueError(
            f"rate-limit storage {uri!r}: use one of {[s + '://' for s in SUPPORTED_SCHEMES]} "
            f"(serve.rate_limit_storage or ${STORAGE_ENV})"
        )
    return uri


def is_shared(uri: str) -> bool:
    """True for storages shared across processes (Redis), False for ``memory://``."""
    return not uri.startswith("memory://")


def redacted(uri: str) -> str:
    """The URI without a password (for logs and /health)."""
    if "@" not in uri:
        return uri
    scheme, rest = uri.split("://", 1)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


def check_storage(uri: str) -> None:
    """Synchronously ping the storage (at start-up); StorageUnavailable with the redacted URI if it fails."""
    if not is_shared(uri):
        return
    try:
        ok = storage_from_string(uri).check()
    except Exception as exc:  # the client raises connection errors of several types
        raise StorageUnavailable(f"rate-limit storage {redacted(uri)} is unreachable: {exc}") from exc
    if not ok:
        raise StorageUnavailable(f"rate-limit storage {redacted(uri)} is unreachable")


class RateLimits:
    """Async limiters of one worker: per key id (``requests_per_hour``), failed auth per client address."""

    def __init__(self, uri: str, failed_auth_per_minute: int) -> None:
        """Build the async storage for ``uri`` (no connection is made until the first request)."""
        if is_shared(uri):
            storage = storage_from_string(f"async+{uri}", implementation="redispy", key_prefix=_NAMESPACE)
        else:
            storage = storage_from_string("async+memory://")
        self.uri = uri
        self.limiter = SlidingWindowCounterRateLimiter(storage)  # type: ignore[arg-type]
        self.failed_item = RateLimitItemPerMinute(failed_auth_per_minute)

    async def _decide(
        self, item: RateLimitItemPerHour | RateLimitItemPerMinute, ident: str, hit: bool
    ) -> Decision:
        """Hit (or only test) ``ident`` against ``item``; the window is read only when refusing."""
        try:
            allowed = await (self.limiter.hit(item, ident) if hit else self.limiter.test(item, ident))
            if allowed:
                return Decision(True, 0, item.amount)
            stats = await self.limiter.get_window_stats(item, ident)
        except Exception as exc:  # connection errors of the storage client
            raise StorageUnavailable(f"rate-limit storage {redacted(self.uri)}: {exc}") from exc
        return Decision(False, max(1, math.ceil(stats.reset_time - time.time())), item.amount)

    async def hit_key(self, key_id: str, requests_per_hour: int) -> Decision:
        """Count one request of ``key_id``; ``allowed`` is False past its hourly budget."""
        return await self._decide(RateLimitItemPerHour(requests_per_hour), f"key:{key_id}", hit=True)

    async def auth_blocked(self, address: str) -> Decision:
        """Has ``address`` used up its failed-auth budget? (``allowed`` False: 429, key not checked)."""
        return await self._decide(self.failed_item, f"authfail:{address}", hit=False)

    async def record_failed_auth(self, address: str) -> None:
        """Count one failed authentication from ``address``."""
        await self._decide(self.failed_item, f"authfail:{address}", hit=True)
