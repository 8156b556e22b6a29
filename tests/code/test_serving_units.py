"""Unit and property tests of the serving helpers: risk bands, token bucket, API-key middleware, schemas."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from churnflow.config.serve import ServeConfig
from churnflow.serving.auth import ApiKeyMiddleware, extract_key, parse_api_keys
from churnflow.serving.ratelimit import TokenBucketLimiter
from churnflow.serving.risk import RiskBands
from churnflow.serving.schemas import PredictRequest, cutoff_to_ms, ms_to_iso

# ------------------------------------------------------------------ risk bands


def test_risk_band_edges() -> None:
    bands = RiskBands(low=0.3, high=0.6)
    assert bands.level(0.0) == "low"
    assert bands.level(0.2999) == "low"
    assert bands.level(0.3) == "medium"
    assert bands.level(0.5999) == "medium"
    assert bands.level(0.6) == "high"
    assert bands.level(1.0) == "high"


def test_risk_bands_from_config_and_validation() -> None:
    assert RiskBands.from_config(ServeConfig()) == RiskBands(0.3, 0.6)
    with pytest.raises(ValueError, match="risk_low <= risk_high"):
        RiskBands(0.7, 0.6)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        RiskBands(0.3, 0.6).level(float("nan"))
    with pytest.raises(ValueError, match="row 1"):
        RiskBands(0.3, 0.6).levels(np.array([0.1, 1.5]))


@given(
    st.floats(0, 1),
    st.floats(0, 1),
    st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=50),
)
def test_vectorised_levels_match_scalar_and_are_monotone(a: float, b: float, probs: list[float]) -> None:
    bands = RiskBands(min(a, b), max(a, b))
    levels = bands.levels(np.array(probs))
    assert levels == [bands.level(p) for p in probs]
    order = {"low": 0, "medium": 1, "high": 2}
    ranked = sorted(zip(probs, levels, strict=True))
    assert all(order[x[1]] <= order[y[1]] for x, y in itertools.pairwise(ranked))


# ------------------------------------------------------------------ token bucket


class FakeClock:
    """A settable monotonic clock (a real clock object, advanced by hand)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_grants_burst_then_refuses_with_retry_after() -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(rate_per_minute=60, burst=3, clock=clock)
    assert [limiter.acquire("k")[0] for _ in range(3)] == [True, True, True]
    granted, retry = limiter.acquire("k")
    assert not granted
    assert retry == pytest.approx(1.0)
    assert limiter.acquire("other")[0], "buckets are per key"
    clock.now += 0.5
    granted, retry = limiter.acquire("k")
    assert not granted and retry == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.acquire("k")[0]


@given(
    st.integers(1, 600),
    st.integers(1, 20),
    st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=200),
)
def test_bucket_never_exceeds_burst_plus_refill(rate: int, burst: int, gaps: list[float]) -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(rate_per_minute=rate, burst=burst, clock=clock)
    start = clock.now
    granted = 0
    for gap in gaps:
        clock.now += gap
        granted += limiter.acquire("k")[0]
    assert granted <= burst + rate * (clock.now - start) / 60 + 1e-9


def test_bucket_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="rate_per_minute"):
        TokenBucketLimiter(0)
    with pytest.raises(ValueError, match="burst"):
        TokenBucketLimiter(10, burst=0.5)


# ------------------------------------------------------------------ API keys


def test_parse_and_extract_keys() -> None:
    assert parse_api_keys(None) == frozenset()
    assert parse_api_keys(" , ") == frozenset()
    assert parse_api_keys("a, b,,c") == {"a", "b", "c"}
    assert extract_key([(b"Authorization", b"Bearer  s3cret ")]) == "s3cret"
    assert extract_key([(b"x-api-key", b"k1")]) == "k1"
    assert extract_key([(b"authorization", b"Basic abc")]) is None
    assert extract_key([]) is None


def _app(monkeypatch: pytest.MonkeyPatch, keys: str | None, rate: int = 600) -> TestClient:
    if keys is None:
        monkeypatch.delenv("TEST_CHURN_KEYS", raising=False)
    else:
        monkeypatch.setenv("TEST_CHURN_KEYS", keys)

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/predict", hello, methods=["POST"]), Route("/livez", hello)])
    app.add_middleware(ApiKeyMiddleware, api_keys_env="TEST_CHURN_KEYS", rate_limit_per_minute=rate)
    return TestClient(app)


def test_middleware_requires_a_known_key(monkeypatch: pytest.MonkeyPatch) -> None:
    client = _app(monkeypatch, "alpha,beta")
    missing = client.post("/predict")
    assert missing.status_code == 401 and "missing" in missing.json()["error"]
    assert client.post("/predict", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.post("/predict", headers={"Authorization": "Bearer alpha"}).text == "ok"
    assert client.post("/predict", headers={"X-API-Key": "beta"}).status_code == 200
    assert client.get("/livez").status_code == 200, "probes stay public"


def test_middleware_auth_off_when_env_unset_limits_per_address(monkeypatch: pytest.MonkeyPatch) -> None:
    client = _app(monkeypatch, None, rate=1)
    assert client.post("/predict").status_code == 200
    assert client.post("/predict", headers={"X-API-Key": "anything"}).status_code == 429, (
        "one bucket per address"
    )


def test_middleware_rate_limits_per_key(monkeypatch: pytest.MonkeyPatch) -> None:
    client = _app(monkeypatch, "alpha,beta", rate=2)
    alpha = {"X-API-Key": "alpha"}
    assert [client.post("/predict", headers=alpha).status_code for _ in range(2)] == [200, 200]
    limited = client.post("/predict", headers=alpha)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert client.post("/predict", headers={"X-API-Key": "beta"}).status_code == 200


# ------------------------------------------------------------------ schemas


def test_request_schema_and_cutoff_forms() -> None:
    assert PredictRequest(events=[{"userId": "1"}]).cutoff is None
    with pytest.raises(ValidationError):
        PredictRequest(events=[])
    with pytest.raises(ValidationError):
        PredictRequest(events=[{}], unexpected=1)  # type: ignore[call-arg]
    iso = PredictRequest(events=[{}], cutoff="2018-10-01T00:00:00Z").cutoff
    assert cutoff_to_ms(iso) == 1538352000000  # type: ignore[arg-type]
    assert cutoff_to_ms(PredictRequest(events=[{}], cutoff=1538352000000).cutoff) == 1538352000000
    assert cutoff_to_ms(datetime(2018, 10, 1)) == 1538352000000, "naive means UTC"
    assert cutoff_to_ms(None) is None
    assert ms_to_iso(1538352000001) == "2018-10-01T00:00:00.001Z"
    parsed = datetime.fromisoformat(ms_to_iso(1538352000001))
    assert parsed == datetime(2018, 10, 1, 0, 0, 0, 1000, tzinfo=UTC)
