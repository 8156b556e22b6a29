"""Serving library pieces without a server: risk bands, keys, typed request decoding, semantic checks,
the scorer on a tiny real LightGBM (every client input → a score or a 4xx), contributions, the guard
middleware (auth, throttles, byte limits, bounded metric labels) and the OpenAPI document."""

from __future__ import annotations

import asyncio
import json
import math
import re
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from churnflow.config import Config
from churnflow.config.serve import ServeConfig
from churnflow.data.load import EVENT_DTYPES, normalize_records
from churnflow.data.schema import RAW_KEYS, REQUIRED_RAW_KEYS
from churnflow.features import feature_names
from churnflow.models.contributions import feature_contributions, top_reasons
from churnflow.serving.auth import (
    KeyConfigError,
    KeyRing,
    digest,
    extract_key,
    insecure_dev_enabled,
    parse_entries,
    read_key_entries,
)
from churnflow.serving.limits_middleware import GuardMiddleware
from churnflow.serving.metrics import ENDPOINTS, exposition
from churnflow.serving.openapi import build_openapi
from churnflow.serving.ratelimit import RateLimits, redacted, storage_uri
from churnflow.serving.risk import RiskBands
from churnflow.serving.schemas import cutoff_to_ms, ms_to_iso
from churnflow.serving.scoring import RequestError, Scorer, StageTimer, events_frame
from tests.serving_helpers import settings_for, synthetic_user_events, train_tiny_model

KEY = "unit-test-key-0123456789"

# ------------------------------------------------------------------ risk bands


def test_risk_band_edges_and_validation() -> None:
    bands = RiskBands(low=0.3, high=0.6)
    assert [bands.level(p) for p in (0.0, 0.2999, 0.3, 0.5999, 0.6, 1.0)] == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
    ]
    assert RiskBands.from_config(ServeConfig()) == RiskBands(0.3, 0.6)
    with pytest.raises(ValueError, match="risk_low <= risk_high"):
        RiskBands(0.7, 0.6)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        bands.level(float("nan"))


@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=50))
def test_vectorised_levels_match_scalar(probs: list[float]) -> None:
    bands = RiskBands(0.3, 0.6)
    assert bands.levels(np.array(probs)) == [bands.level(p) for p in probs]


# ------------------------------------------------------------------ API keys


def test_key_entries_rates_hashes_and_errors() -> None:
    hashed = digest("stored-as-a-hash-only-0001").hex()
    keys = parse_entries(
        [" first-key-0123456789:120 ", "", "second-key-0123456789", f"sha256:{hashed}:5"], 999, 16
    )
    assert [k.requests_per_hour for k in keys] == [120, 999, 5]
    assert all(len(k.key_id) == 12 for k in keys)
    ring = KeyRing(keys)
    assert ring.lookup("first-key-0123456789") is keys[0]
    assert ring.lookup("stored-as-a-hash-only-0001") is keys[2]
    assert ring.lookup("first-key-012345678") is None
    assert ring.lookup("") is None
    with pytest.raises(KeyConfigError, match="entry 1 is shorter") as short:
        parse_entries(["tiny:5"], 10, 16)
    assert "tiny" not in str(short.value), "the error never repeats the key"
    with pytest.raises(KeyConfigError, match="repeats"):
        parse_entries(["same-key-0123456789", "same-key-0123456789:7"], 10, 16)
    with pytest.raises(KeyConfigError, match="requests_per_hour"):
        parse_entries(["some-key-0123456789:0"], 10, 16)


def test_keys_come_from_the_variable_or_the_file(tmp_path: Path) -> None:
    assert read_key_entries("K", {}) == ([], "none")
    entries, source = read_key_entries("K", {"K": "a-key-0123456789abc,b-key-0123456789abc:3"})
    assert entries == ["a-key-0123456789abc", "b-key-0123456789abc:3"] and source == "$K"
    key_file = tmp_path / "keys.txt"
    key_file.write_text("# ops keys\nfile-key-0123456789  # team A\n\n")
    entries, source = read_key_entries("K", {"CHURNFLOW_API_KEYS_FILE": str(key_file)})
    assert [e.strip() for e in entries if e.strip()] == ["file-key-0123456789"] and "keys.txt" in source
    with pytest.raises(KeyConfigError, match="cannot read"):
        read_key_entries("K", {"CHURNFLOW_API_KEYS_FILE": str(tmp_path / "missing")})
    assert insecure_dev_enabled({"CHURNFLOW_INSECURE_DEV": "1"})
    assert not insecure_dev_enabled({"CHURNFLOW_INSECURE_DEV": "0"}) and not insecure_dev_enabled({})


def test_extract_key() -> None:
    assert extract_key([(b"Authorization", b"Bearer  s3cret ")]) == "s3cret"
    assert extract_key([(b"x-api-key", b"k1")]) == "k1"
    assert extract_key([(b"authorization", b"Basic abc")]) is None
    assert extract_key([]) is None


def test_rate_limit_storage_settings() -> None:
    assert storage_uri("memory://", {}) == "memory://"
    assert storage_uri("memory://", {"CHURNFLOW_RATE_LIMIT_STORAGE": "redis://h:1"}) == "redis://h:1"
    with pytest.raises(ValueError, match="rate-limit storage"):
        storage_uri("mongodb://x", {})
    assert redacted("redis://user:pw@host:6379/0") == "redis://***@host:6379/0"


# ------------------------------------------------------------------ scorer on a tiny real model


@pytest.fixture(scope="module")
def scorer(tmp_path_factory: pytest.TempPathFactory) -> Scorer:
    cfg = Config()
    cfg.serve.max_events_per_request = 500
    cfg.serve.max_batch_users = 5
    cfg.serve.max_batch_events = 900
    model, _ = train_tiny_model(feature_names(cfg.features), tmp_path_factory.mktemp("m") / "model")
    return Scorer(model, settings_for(model, cfg))


def _body(events: list[dict[str, Any]], **extra: Any) -> bytes:
    return json.dumps({"events": events, **extra}).encode()


def _error(scorer: Scorer, body: bytes | str) -> RequestError:
    raw = body.encode() if isinstance(body, str) else body
    with pytest.raises(RequestError) as caught:
        scorer.predict(raw, StageTimer())
    return caught.value


def test_generated_event_schema_follows_the_raw_schema(scorer: Scorer) -> None:
    fields = msgspec.structs.fields(scorer.schemas.event)
    assert sorted(f.name for f in fields) == sorted(RAW_KEYS)
    assert sorted(f.name for f in fields if f.required) == sorted(REQUIRED_RAW_KEYS)


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("itemInSession", 2**31, "itemInSession"),
        ("ts", 2**63, "ts"),
        ("status", 2**63, "status"),
        ("sessionId", 2**63, "sessionId"),
        ("length", 1e308, "length"),
        ("length", -1.0, "length"),
        ("ts", "yesterday", "ts"),
        ("ts", 1.5e12, "ts"),
        ("auth", "Hacker", "auth"),
        ("userId", "", "userId"),
        ("page", "x" * 5000, "page"),
    ],
)
def test_out_of_range_fields_are_400_naming_the_field(
    scorer: Scorer, key: str, value: Any, field: str
) -> None:
    events = synthetic_user_events("5", seed=3, n_events=10)
    events[4] = {**events[4], key: value}
    error = _error(scorer, _body(events))
    assert (error.status, error.field, error.index) == (400, field, 4)
    assert error.path == f"events[4].{field}"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"events": [], "cutoff": 1}', "events"),
        ("not json", None),
        ('{"events": [{"ts": Infinity}]}', None),
        ('{"cutoff": 1538352000000}', "events"),
        ('[{"events": 1}]', None),
        ('{"events": [{}]}', "page"),
        ('{"events": [1]}', "events"),
        ('{"events": "x", "extra": 1}', None),
    ],
)
def test_malformed_bodies_are_400(scorer: Scorer, body: str, field: str | None) -> None:
    error = _error(scorer, body)
    assert error.status == 400
    if field is not None:
        assert error.field == field, error.message


@pytest.mark.parametrize(
    ("cutoff", "field", "reason"),
    [
        (-1, "cutoff", "out of range"),
        (10**30, "cutoff", "out of range"),
        ("9999-12-31T23:59:59Z", "cutoff", "out of range"),
        (True, "cutoff", "wrong type"),
        (1_538_352_000_000, "cutoff", "before first event"),  # before the user's first event
        ("2018-10-05T00:00:00Z", "ts", "event after cutoff"),  # events after it were sent
    ],
)
def test_cutoff_checks(scorer: Scorer, cutoff: Any, field: str, reason: str) -> None:
    events = synthetic_user_events("7", seed=2, n_events=30)
    error = _error(scorer, _body(events, cutoff=cutoff))
    assert error.status == 400 and error.field == field
    assert reason.split()[0] in error.kind, error.kind


def test_several_users_and_too_many_events(scorer: Scorer) -> None:
    mixed = [*synthetic_user_events("5", seed=3, n_events=5), *synthetic_user_events("6", seed=3, n_events=3)]
    error = _error(scorer, _body(mixed))
    assert (error.status, error.field, error.index) == (400, "userId", 5)
    big = _error(scorer, _body(synthetic_user_events("5", seed=3, n_events=501)))
    assert (big.status, big.field) == (413, "events")


def test_prediction_matches_the_library_and_explains_itself(scorer: Scorer) -> None:
    from churnflow.features import compute_features_online
    from churnflow.serving.schemas import ms_to_datetime

    events = synthetic_user_events("42", seed=1, n_events=120)
    cutoff = sorted(e["ts"] for e in events)[80]
    before = [e for e in events if e["ts"] < cutoff]
    timer = StageTimer()
    response, matrix = scorer.predict(_body(before, cutoff=ms_to_iso(cutoff), include_features=True), timer)
    values = compute_features_online(
        normalize_records(before), ms_to_datetime(cutoff), scorer.settings.features
    )
    expected = scorer.model.predict_proba_matrix(np.array([[values[n] for n in scorer.feature_names]]))[0]
    assert response.churn_probability == pytest.approx(expected, abs=1e-12)
    assert response.churn_prediction == int(expected >= scorer.settings.threshold)
    assert response.cutoff == ms_to_iso(cutoff) and response.n_events == len(before)
    assert response.features is not None
    assert all(
        (response.features[k] is None and math.isnan(v)) or response.features[k] == v
        for k, v in values.items()
    )
    assert 0 < len(response.top_reasons) <= scorer.settings.serve.top_reasons
    contributions = feature_contributions(scorer.model, matrix)[0]
    top = max(range(len(scorer.feature_names)), key=lambda i: abs(contributions[i]))
    assert response.top_reasons[0].feature == scorer.feature_names[top]
    assert set(timer.seconds) >= {"decode", "frame", "features", "predict", "explain"}
    epoch, _ = scorer.predict(_body(before, cutoff=cutoff), StageTimer())
    assert epoch.churn_probability == response.churn_probability


def test_explanations_are_optional(scorer: Scorer) -> None:
    events = synthetic_user_events("43", seed=1, n_events=50)
    timer = StageTimer()
    plain, _ = scorer.predict(_body(events, explain=False), timer)
    explained, _ = scorer.predict(_body(events), StageTimer())
    assert plain.top_reasons is None and "explain" not in timer.seconds
    assert explained.top_reasons and plain.churn_probability == explained.churn_probability
    batch, _ = scorer.predict_batch(json.dumps({"users": [{"events": events}]}).encode(), StageTimer())
    assert batch.results[0].result is not None and batch.results[0].result.top_reasons is None, (
        "off for batches"
    )
    asked, _ = scorer.predict_batch(
        json.dumps({"users": [{"events": events}], "explain": True}).encode(), StageTimer()
    )
    assert (
        asked.results[0].result is not None and asked.results[0].result.top_reasons == explained.top_reasons
    )


def test_request_frame_equals_the_loaders_table(scorer: Scorer) -> None:
    events = synthetic_user_events("9", seed=4, n_events=50)
    events[3]["registration"] = 1_538_000_000_000.4  # a fraction rounds as in the loader
    decoded = scorer.schemas.predict_decoder.decode(_body(events)).events
    ours = events_frame(decoded)
    loader = normalize_records(events)
    common = [c for c in loader.columns if c in ours.columns]
    assert set(loader.columns) - set(common) == {"source_file"}
    cast = ours.select([pl.col(c).cast(EVENT_DTYPES[c]) for c in common])
    assert cast.equals(loader.select(common))


def test_batch_mixes_results_and_per_user_errors(scorer: Scorer) -> None:
    users = [{"events": synthetic_user_events(str(u), seed=u, n_events=40)} for u in range(3)]
    late = synthetic_user_events("x", seed=1, n_events=5)
    users.append({"events": late, "cutoff": late[2]["ts"]})  # events at/after the cutoff: that user fails
    users.append({"events": synthetic_user_events("1", seed=9, n_events=5)})  # user 1 again
    body = json.dumps({"users": users}).encode()
    response, matrix = scorer.predict_batch(body, StageTimer())
    assert (response.n_users, response.n_ok, response.n_failed) == (5, 3, 2)
    assert [item.ok for item in response.results] == [True, True, True, False, False]
    assert response.results[3].error is not None and response.results[3].error.path == "users[3].events[2].ts"
    assert response.results[4].error is not None and "earlier entry" in response.results[4].error.error
    assert matrix is not None and matrix.shape == (3, len(scorer.feature_names))
    for item in response.results[:3]:
        user = next(u for u in users if u["events"][0]["userId"] == item.user_id)
        single, _ = scorer.predict(_body(user["events"]), StageTimer())
        assert item.result is not None
        assert item.result.churn_probability == pytest.approx(single.churn_probability, abs=1e-9)
    flat = [e for u in users[:3] for e in u["events"]]
    by_events, _ = scorer.predict_batch(json.dumps({"events": flat}).encode(), StageTimer())
    assert [item.user_id for item in by_events.results] == ["0", "1", "2"]
    schema_violation = json.dumps({"users": [users[0], {"events": [{"ts": "late"}]}]}).encode()
    with pytest.raises(RequestError) as caught:
        scorer.predict_batch(schema_violation, StageTimer())
    assert caught.value.status == 400 and caught.value.path == "users[1].events[0].ts"
    with pytest.raises(RequestError) as caught:
        scorer.predict_batch(json.dumps({"users": users * 2}).encode(), StageTimer())
    assert caught.value.status == 413
    with pytest.raises(RequestError, match="exactly one"):
        scorer.predict_batch(json.dumps({"users": users, "events": flat}).encode(), StageTimer())


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.fixed_dictionaries({}, optional={k: _json_values for k in RAW_KEYS}) | _json_values,
        max_size=4,
    ),
    st.one_of(st.none(), st.integers(), st.text(max_size=25), st.floats(allow_nan=False)),
)
def test_any_body_scores_or_is_a_4xx(scorer: Scorer, events: list[Any], cutoff: Any) -> None:
    """Property: no client input makes the scorer raise anything but a RequestError (no 5xx)."""
    template = synthetic_user_events("3", seed=5, n_events=4)
    mixed = [
        {**template[i % 4], **e} if isinstance(e, dict) else e for i, e in enumerate(events)
    ]  # mostly-valid events with random fields replaced
    for body in (
        _body(mixed, cutoff=cutoff),
        _body(mixed),
        json.dumps({"users": [{"events": mixed}]}).encode(),
    ):
        try:
            if b'"users"' in body:
                scorer.predict_batch(body, StageTimer())
            else:
                response, _ = scorer.predict(body, StageTimer())
                assert 0.0 <= response.churn_probability <= 1.0
        except RequestError as exc:
            assert 400 <= exc.status < 500


# ------------------------------------------------------------------ contributions


def test_contributions_sum_to_the_log_odds(scorer: Scorer) -> None:
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, 5.0, size=(20, len(scorer.feature_names)))
    x[0, :5] = np.nan
    contributions = feature_contributions(scorer.model, x)
    margins = np.asarray(scorer.model.margin_fn(x)) + scorer.model.logit_offset
    np.testing.assert_allclose(contributions.sum(axis=1), margins, rtol=1e-9, atol=1e-9)
    reasons = top_reasons(contributions[0], x[0], scorer.feature_names, 3)
    assert len(reasons) == 3
    assert [abs(r["contribution"]) for r in reasons] == sorted(
        (abs(r["contribution"]) for r in reasons), reverse=True
    )
    assert all(r["direction"] == ("raises" if r["contribution"] > 0 else "lowers") for r in reasons)


# ------------------------------------------------------------------ guard middleware


async def _echo(request: Request) -> PlainTextResponse:
    body = await request.body()
    return PlainTextResponse(f"{len(body)}")


def _guarded_client(
    keys: list[str] | None,
    failed_per_minute: int = 3,
    max_body: int = 100,
    client: tuple[str, int] = ("10.0.0.1", 1),
) -> TestClient:
    app = Starlette(
        routes=[
            Route("/predict", _echo, methods=["POST"]),
            Route("/livez", _echo),
            Route("/predict/batch", _echo, methods=["POST"]),
        ]
    )
    ring = KeyRing(parse_entries(keys, 1000, 16)) if keys is not None else None
    app.add_middleware(
        GuardMiddleware,
        keyring=ring,
        limits=RateLimits("memory://", failed_per_minute),
        default_requests_per_hour=3,
        max_body_bytes=max_body,
        max_batch_body_bytes=10 * max_body,
    )
    return TestClient(app, client=client)


def test_guard_401_403_and_failed_auth_throttle() -> None:
    client = _guarded_client([f"{KEY}:1000"])
    assert client.get("/livez").status_code == 200, "probes need no key"
    missing = client.post("/predict", content=b"{}")
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert client.post("/predict", headers={"X-API-Key": "wrong-key-0123456789"}).status_code == 403
    assert client.post("/predict", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert client.post("/predict", headers={"X-API-Key": "wrong-key-0123456789"}).status_code == 403
    throttled = client.post("/predict", headers={"Authorization": f"Bearer {KEY}"})
    assert throttled.status_code == 429, "3 failed attempts: the address waits, even with a good key"
    assert int(throttled.headers["retry-after"]) >= 1
    other = _guarded_client([f"{KEY}:1000"], client=("10.0.0.2", 1))
    assert other.post("/predict", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


def test_guard_rate_limit_per_key_and_insecure_mode() -> None:
    client = _guarded_client([f"{KEY}:2", "other-key-0123456789:5"])
    codes = [client.post("/predict", headers={"X-API-Key": KEY}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert client.post("/predict", headers={"X-API-Key": "other-key-0123456789"}).status_code == 200
    insecure = _guarded_client(None)
    assert [insecure.post("/predict").status_code for _ in range(4)] == [200, 200, 200, 429]


def test_guard_byte_limits_before_parsing() -> None:
    client = _guarded_client([KEY])
    auth = {"X-API-Key": KEY}
    assert client.post("/predict", content=b"x" * 100, headers=auth).text == "100"
    declared = client.post("/predict", content=b"x" * 101, headers=auth)
    assert declared.status_code == 413 and "exceeds 100 bytes" in declared.json()["error"]

    def stream() -> Any:
        for _ in range(30):
            yield b"y" * 10

    chunked = client.post("/predict", content=stream(), headers=auth)
    assert chunked.status_code == 413, "a body without Content-Length is cut off at the limit"
    assert client.post("/predict/batch", content=b"x" * 900, headers=auth).status_code == 200


def _request_series() -> set[tuple[str, str]]:
    pattern = re.compile(r'churnflow_http_requests_total\{endpoint="([^"]*)",status="(\d+)"\}')
    return set(pattern.findall(exposition().decode()))


def test_metric_labels_stay_bounded() -> None:
    client = _guarded_client([KEY], failed_per_minute=1000)
    for i in range(100):
        client.get(f"/random/{i}/path")
        client.post(f"/x{i}", headers={"X-API-Key": KEY})
    series = _request_series()
    assert {endpoint for endpoint, _ in series} <= set(ENDPOINTS)
    assert ("other", "401") in series and ("other", "404") in series
    assert len(series) < 40, "one series per (known endpoint, status), never per path"
    text = exposition().decode()
    assert "/random" not in text and "/x1" not in text


# ------------------------------------------------------------------ OpenAPI


def test_openapi_documents_types_errors_and_security(scorer: Scorer) -> None:
    doc = build_openapi(scorer.schemas, scorer.settings)
    assert doc["openapi"].startswith("3.1")
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["scheme"] == "bearer" and schemes["apiKeyHeader"]["name"] == "X-API-Key"
    for path in ("/predict", "/predict/user", "/predict/batch"):
        responses = doc["paths"][path]["post"]["responses"]
        assert {"200", "400", "401", "403", "413", "415", "429"} <= set(responses), path
        assert "Retry-After" in responses["429"]["headers"]
    assert doc["paths"]["/livez"]["get"]["security"] == []
    event = doc["components"]["schemas"]["Event"]
    assert set(event["required"]) == set(REQUIRED_RAW_KEYS)
    assert event["properties"]["itemInSession"]["anyOf"][0]["maximum"] == 2**31 - 1
    assert event["properties"]["status"]["anyOf"][0]["enum"] == [200, 307, 404]
    assert event["properties"]["ts"]["minimum"] == scorer.limits.min_ts_ms
    error = doc["components"]["schemas"]["ErrorBody"]
    assert error["properties"]["error"]["type"] == "string"
    json.dumps(doc)


def test_cutoff_forms() -> None:
    from datetime import UTC, datetime

    assert cutoff_to_ms(1538352000000) == 1538352000000
    assert cutoff_to_ms(datetime(2018, 10, 1)) == 1538352000000, "naive means UTC"
    assert cutoff_to_ms(datetime(2018, 10, 1, 0, 0, 0, 1, tzinfo=UTC)) == 1538352000001, "sub-ms rounds up"
    assert cutoff_to_ms(None) is None
    assert ms_to_iso(1538352000001) == "2018-10-01T00:00:00.001Z"


def test_rate_limits_async_api() -> None:
    limits = RateLimits("memory://", 2)

    async def run() -> list[bool]:
        out = [(await limits.hit_key("k", 2)).allowed for _ in range(3)]
        await limits.record_failed_auth("a")
        await limits.record_failed_auth("a")
        out.append((await limits.auth_blocked("a")).allowed)
        return out

    assert asyncio.run(run()) == [True, True, False, False]
