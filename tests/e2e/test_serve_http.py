"""The real ``bentoml serve`` on 127.0.0.1 with a tiny packaged model: every endpoint and every error code.

One served instance is shared by the module (start-up is the expensive part). Tests that count failed
authentication use source addresses of their own (127.0.0.2, 127.0.0.3: loopback on Linux), so the
per-address throttle of one test does not leak into another.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from typer.testing import CliRunner

from churnflow.config import Config
from churnflow.features import compute_features, feature_names
from tests.serving_helpers import (
    Server,
    online_drift_reference,
    package,
    register,
    serving_config,
    synthetic_user_events,
    train_tiny_model,
    write_events_jsonl,
)

pytestmark = pytest.mark.slow
GOOD = "e2e-good-key-0123456789"
LIMITED = "e2e-limited-key-0123456789"
AUTH = {"Authorization": f"Bearer {GOOD}"}
MAX_BODY = 2_000_000


@dataclass
class Served:
    """The running server and what it serves."""

    server: Server
    cfg: Config
    tag: str
    root: Path

    @property
    def base(self) -> str:
        return self.server.base

    def client(self, source: str = "127.0.0.1") -> httpx.Client:
        """An HTTP client whose requests come from ``source`` (a loopback address)."""
        transport = httpx.HTTPTransport(local_address=source)
        return httpx.Client(base_url=self.base, transport=transport, timeout=60)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("served")
    cfg = serving_config("http_churn")
    cfg.serve.max_body_bytes = MAX_BODY
    cfg.serve.failed_auth_per_minute = 5
    cfg.serve.max_batch_users = 50
    model, _ = train_tiny_model(feature_names(cfg.features), root / "model")
    register(cfg, root / "model", "champion")
    record = package(
        cfg, root / "model", None, online_drift_reference(model.feature_names[:30], window=20)
    ).record
    env = {
        "CHURNFLOW_BENTO_MODEL": record.bento_model_tag,
        cfg.serve.api_keys_env: f"{GOOD}:100000,{LIMITED}:3",
    }
    server = Server(env, root / "server.log", root)
    with server:
        yield Served(server, cfg, record.bento_model_tag, root)


def _post(served: Served, path: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    with served.client() as client:
        return client.post(path, json=body, headers={**AUTH, **(headers or {})})


# ------------------------------------------------------------------ endpoints


def test_predict_alias_and_churnflow_score_agree(served: Served, tmp_path: Path) -> None:
    events = synthetic_user_events("77", seed=9, n_events=300)
    first = _post(served, "/predict", {"events": events})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["user_id"] == "77" and body["n_events"] == 300 and body["model_alias"] == "champion"
    assert 0.0 <= body["churn_probability"] <= 1.0
    assert body["churn_prediction"] == int(body["churn_probability"] >= body["threshold"])
    assert body["risk_level"] in {"low", "medium", "high"} and len(body["prediction_id"]) == 32
    assert 0 < len(body["top_reasons"]) <= served.cfg.serve.top_reasons
    assert {"feature", "value", "contribution", "direction"} == set(body["top_reasons"][0])
    alias = _post(served, "/predict/user", {"events": events}).json()
    assert (
        alias["churn_probability"] == body["churn_probability"]
        and alias["prediction_id"] != body["prediction_id"]
    )
    from churnflow.cli import app

    out = tmp_path / "scores.csv"
    events_file = write_events_jsonl(tmp_path / "events.jsonl", events)
    result = CliRunner().invoke(
        app, ["score", "--events", str(events_file), "--out", str(out), "--model", served.tag]
    )
    assert result.exit_code == 0, result.output
    row = pl.read_csv(out).row(0, named=True)
    assert row["churn_probability"] == pytest.approx(body["churn_probability"], abs=1e-9)
    assert row["risk_level"] == body["risk_level"]


def test_online_features_equal_offline_features_through_the_api(served: Served, tmp_path: Path) -> None:
    users = {u: synthetic_user_events(u, seed=11, n_events=200, days=40) for u in ("31", "32")}
    events_file = write_events_jsonl(tmp_path / "events.jsonl", [e for ev in users.values() for e in ev])
    from churnflow.data.load import load_events

    loaded = load_events([events_file], served.cfg.data).events
    checked = 0
    for user, events in users.items():
        ts = sorted(e["ts"] for e in events)
        for cutoff in (ts[40], ts[150], ts[-1] + 1):
            sent = [e for e in events if e["ts"] < cutoff]
            reply = _post(served, "/predict", {"events": sent, "cutoff": cutoff, "include_features": True})
            assert reply.status_code == 200, reply.text
            online = reply.json()["features"]
            cut = pl.DataFrame({"user_id": [user], "cutoff": [cutoff]}).with_columns(
                pl.col("cutoff").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")
            )
            offline = compute_features(loaded, cut, served.cfg.features).row(0, named=True)
            for name in feature_names(served.cfg.features):
                want = offline[name]
                if want is None or (isinstance(want, float) and math.isnan(want)):
                    assert online[name] is None, (user, cutoff, name)
                else:
                    assert online[name] == pytest.approx(want, rel=1e-12, abs=1e-12), (user, cutoff, name)
                checked += 1
    assert checked == 6 * len(feature_names(served.cfg.features))


def test_batch_of_users_and_of_one_event_list(served: Served) -> None:
    users = [{"events": synthetic_user_events(str(u), seed=u, n_events=60)} for u in range(5)]
    late = synthetic_user_events("late", seed=3, n_events=10)
    users.append({"events": late, "cutoff": late[0]["ts"]})
    reply = _post(served, "/predict/batch", {"users": users})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["n_users"], body["n_ok"], body["n_failed"]) == (6, 5, 1)
    failed = body["results"][5]
    assert failed["ok"] is False and failed["user_id"] == "late" and failed["error"]["field"] == "cutoff"
    single = _post(served, "/predict", users[2]).json()
    assert body["results"][2]["result"]["churn_probability"] == pytest.approx(
        single["churn_probability"], abs=1e-9
    )
    flat = [e for u in users[:5] for e in u["events"]]
    by_events = _post(served, "/predict/batch", {"events": flat}).json()
    assert [r["user_id"] for r in by_events["results"]] == ["0", "1", "2", "3", "4"]
    too_many = _post(served, "/predict/batch", {"users": users * 10})
    assert too_many.status_code == 413 and too_many.json()["field"] == "users"


def test_health_models_metrics_and_openapi(served: Served) -> None:
    with served.client() as client:
        health = client.get("/health", headers=AUTH).json()
        assert health["status"] == "ok" and health["model_loaded"] and health["feature_count"] > 0
        assert health["auth"] == "api_keys" and health["uptime_s"] > 0
        models = client.get("/models", headers=AUTH).json()
        assert models["served"]["tag"] == served.tag and models["served"]["features"]
        assert models["champion"]["version"] == health["model_version"]
        assert models["champion"]["test_metrics"]["roc_auc_ci"] == [0.85, 0.95]
        assert models["evaluation"]["test"]["roc_auc"] == 0.9 and models["warnings"] == []
        metrics = client.get("/metrics", headers=AUTH)
        assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
        for name in (
            "churnflow_http_requests_total",
            "churnflow_http_request_duration_seconds_bucket",
            "churnflow_predictions_total",
            'churnflow_stage_seconds_count{stage="features"}',
            "churnflow_input_drift_score",
        ):
            assert name in metrics.text, name
        doc = client.get("/docs.json").json()  # public
        assert doc["components"]["securitySchemes"] and "/predict/batch" in doc["paths"]
        for probe in ("/livez", "/readyz", "/healthz"):
            assert client.get(probe).status_code == 200


def test_the_drift_gauge_moves_with_the_traffic(served: Served) -> None:
    with served.client() as client:
        for u in range(25):  # a full window of the packaged reference (20 rows)
            assert client.post(
                "/predict", json={"events": synthetic_user_events(f"d{u}", u, 50)}, headers=AUTH
            ).is_success
        text = client.get("/metrics", headers=AUTH).text
    score = float(re.search(r"^churnflow_input_drift_score ([0-9.e+-]+)$", text, re.M).group(1))  # type: ignore[union-attr]
    assert 0.0 < score <= 1.0, "synthetic users are far from the even reference shares"


# ------------------------------------------------------------------ error codes


def test_client_errors_are_4xx_naming_the_field(served: Served) -> None:
    events = synthetic_user_events("5", seed=3, n_events=10)
    cases: list[tuple[Any, int, str | None]] = [
        ({"events": [*events[:3], {**events[3], "ts": "yesterday"}]}, 400, "ts"),
        ({"events": [{**events[0], "itemInSession": 2**31}]}, 400, "itemInSession"),
        ({"events": [{**events[0], "sessionId": 2**63}]}, 400, "sessionId"),
        ({"events": events, "cutoff": "9999-12-31T23:59:59Z"}, 400, "cutoff"),
        ({"events": events, "cutoff": -1}, 400, "cutoff"),
        ({"events": events, "cutoff": True}, 400, "cutoff"),
        ({"events": events, "cutoff": events[0]["ts"]}, 400, "cutoff"),
        ({"events": [*events, *synthetic_user_events("6", seed=3, n_events=2)]}, 400, "userId"),
        ({"events": [{}]}, 400, "page"),
        ({"cutoff": 1538352000000}, 400, "events"),
    ]
    for body, status, field in cases:
        reply = _post(served, "/predict", body)
        assert reply.status_code == status, (body, reply.text)
        assert reply.json()["field"] == field, reply.text
    with served.client() as client:
        infinity = client.post("/predict", content=b'{"events": [{"length": Infinity}]}', headers=AUTH)
        assert infinity.status_code == 400
        multipart = client.post(
            "/predict", content=b"x", headers={**AUTH, "Content-Type": "multipart/form-data"}
        )
        assert multipart.status_code == 415
        assert client.get("/predict", headers=AUTH).status_code == 405
        assert client.get("/no/such/path", headers=AUTH).status_code == 404


def test_413_before_parsing_declared_or_streamed(served: Served) -> None:
    big = b'{"events": [' + b" " * MAX_BODY + b"]}"
    with served.client() as client:
        declared = client.post("/predict", content=big, headers={**AUTH, "Content-Type": "application/json"})
        assert declared.status_code == 413 and declared.json()["field"] == "body"

        def stream() -> Iterator[bytes]:
            for i in range(0, len(big), 65536):
                yield big[i : i + 65536]

        streamed = client.post(
            "/predict", content=stream(), headers={**AUTH, "Content-Type": "application/json"}
        )
        assert streamed.status_code == 413


def test_401_403_and_rate_limit(served: Served) -> None:
    events = {"events": synthetic_user_events("9", seed=4, n_events=20)}
    with served.client("127.0.0.3") as client:
        missing = client.post("/predict", json=events)
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
        assert (
            client.post("/predict", json=events, headers={"X-API-Key": "not-a-key-0123456789"}).status_code
            == 403
        )
        assert client.get("/metrics").status_code == 401, "metrics need a key too"
        codes = [
            client.post("/predict", json=events, headers={"X-API-Key": LIMITED}).status_code for _ in range(4)
        ]
        assert codes == [200, 200, 200, 429]
        limited = client.post("/predict", json=events, headers={"X-API-Key": LIMITED})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert client.post("/predict", json=events, headers=AUTH).status_code == 200, (
            "another key, its own budget"
        )


def test_failed_authentication_is_throttled_per_address(served: Served) -> None:
    with served.client("127.0.0.2") as client:
        codes = [
            client.get("/health", headers={"X-API-Key": f"guess-{i:020d}"}).status_code for i in range(7)
        ]
        assert codes[:5] == [403] * 5 and codes[5:] == [429, 429]
        assert client.get("/health", headers=AUTH).status_code == 429, "even the right key waits"
    with served.client("127.0.0.1") as other:
        assert other.get("/health", headers=AUTH).status_code == 200, "other addresses are not affected"


def test_anonymous_random_paths_do_not_grow_metrics(served: Served) -> None:
    with served.client() as client:
        client.get("/warm/up")
        before = client.get("/metrics", headers=AUTH).text
    with served.client("127.0.0.4") as anonymous:
        for i in range(300):
            anonymous.get(f"/{uuid.uuid4().hex}/{i}")
    with served.client() as client:
        after = client.get("/metrics", headers=AUTH).text

    def series(text: str) -> set[str]:
        return {
            line.split(" ")[0]
            for line in text.splitlines()
            if line.startswith("churnflow_http_requests_total")
        }

    assert len(series(after) - series(before)) <= 2, series(after) - series(before)  # (other, 429) at most
    assert abs(len(after) - len(before)) < 4000, "the exposition does not grow with the paths requested"


def test_a_400_is_one_info_line_without_body_content(served: Served) -> None:
    marker = f"MARKER{uuid.uuid4().hex}"
    log_before = served.server.log().count("POST /predict 400")
    reply = _post(
        served, "/predict", {"events": [{"userId": marker, "ts": marker, "sessionId": 1, "page": marker}]}
    )
    assert reply.status_code == 400
    deadline = time.monotonic() + 10
    while served.server.log().count("POST /predict 400") == log_before and time.monotonic() < deadline:
        time.sleep(0.2)
    log = served.server.log()
    assert log.count("POST /predict 400") == log_before + 1
    assert marker not in log, "no body content in the logs"
    line = [ln for ln in log.splitlines() if "POST /predict 400" in ln][-1]
    assert "[INFO]" in line and "at=events[0].ts" in line and "Traceback" not in log


def test_schemathesis_short_run(served: Served, tmp_path: Path) -> None:
    """Typed schemas, a valid key, a few dozen cases per operation: no 5xx, no schema violations."""
    report = tmp_path / "schemathesis.json"
    checks = [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
    ]
    cmd = [str(Path(sys.executable).parent / "schemathesis"), "run", f"{served.base}/docs.json"]
    cmd += ["-H", f"Authorization: Bearer {GOOD}", "--checks", ",".join(checks), "--max-examples", "25"]
    cmd += ["--seed", "7", "--workers", "1", "--no-color", "--generation-database", "none"]
    cmd += [
        "--generation-with-security-parameters",
        "false",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    result = json.loads(report.read_text())
    assert result["failures"] == [] and result["errors"] == [], done.stdout[-4000:]
    assert result["operations"]["tested"] == result["operations"]["selected"] >= 9
    assert result["test_cases"]["generated"] >= 200
    assert done.returncode == 0, done.stdout[-4000:]
