"""A per-key token bucket: ``rate_per_minute`` tokens refill continuously, up to ``burst`` stored.

Invariant: over any window of ``t`` seconds a key is granted at most ``burst + rate_per_minute * t / 60``
requests. Thread-safe; the clock is injectable so tests need no sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    """Grant or refuse one request per call to :meth:`acquire`, per key."""

    def __init__(
        self,
        rate_per_minute: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        """``burst`` defaults to one minute's worth of tokens; ``max_keys`` bounds memory (oldest dropped)."""
        if rate_per_minute <= 0:
            raise ValueError(f"rate_per_minute must be > 0, got {rate_per_minute}")
        self.rate_per_second = float(rate_per_minute) / 60.0
        self.burst = float(rate_per_minute if burst is None else burst)
        if self.burst < 1:
            raise ValueError(f"burst must be >= 1, got {self.burst}")
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> tuple[bool, float]:
        """One token for ``key``: ``(True, 0.0)`` if granted, else ``(False, seconds until one is due)``."""
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self._max_keys:
                    self._buckets.pop(next(iter(self._buckets)))
                bucket = _Bucket(tokens=self.burst, updated=now)
                self._buckets[key] = bucket
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate_per_second)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return True, 0.0
            return False, (1.0 - bucket.tokens) / self.rate_per_second
