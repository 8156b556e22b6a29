"""The BentoML service in-process (Starlette TestClient on ``ChurnService.to_asgi()``), real packaged model.

The fixture trains a tiny LightGBM on synthetic features named as the feature registry names them, logs and
registers it in the temporary MLflow, packages it into the temporary BentoML store and imports the service.
One ASGI app per process (BentoML registers its Prometheus metrics once), with API keys on; each test uses
a key of its own (rate-limit buckets are per key). Auth-off behaviour is covered in test_serving_units.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from starlette.testclient import TestClient

from churnflow.config import Config
from churnflow.data.load import normalize_records
from churnflow.features import compute_features_online, feature_names
from churnflow.serving.schemas import ms_to_iso
from churnflow.serving.scoring import ms_to_datetime
from churnflow.serving.testing import register_and_package, synthetic_user_events, train_tiny_model

pytestmark = pytest.mark.slow
KEYS_ENV = "CHURNFLOW_API_KEYS"


KEYS = [f"k-{name}" for name in ("good", "cutoff", "bad", "rate", "other", "metrics")]


class Packaged:
    """What the fixture built: config, the native model, the service module and a client of its app."""

    def __init__(self, cfg: Config, model: Any, service: ModuleType, tag: str, client: TestClient) -> None:
        self.cfg, self.model, self.service, self.tag, self.client = cfg, model, service, tag, client

    def expected_probability(self, events: list[dict[str, Any]], cutoff_ms: int) -> float:
        """The same score computed directly with the library (no service)."""
        import pandas as pd

        values = compute_features_online(
            normalize_records(events), ms_to_datetime(cutoff_ms), self.cfg.features
        )
        return float(self.model.predict_proba(pd.DataFrame([values]))[0])


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Packaged]:
    cfg = Config()
    cfg.tracking.registered_model = "svc_churn"
    cfg.tracking.experiment = "svc_churn"
    cfg.serve.bento_model_name = "svc_churn"
    cfg.serve.rate_limit_per_minute = 5
    cfg.serve.max_events_per_request = 300
    model_dir = tmp_path_factory.mktemp("svc") / "model"
    model, _ = train_tiny_model(feature_names(cfg.features), model_dir)
    _, record = register_and_package(cfg, model_dir, test_roc_auc=0.95, drift_reference={"version": 1})
    saved = {k: os.environ.get(k) for k in ("CHURNFLOW_BENTO_MODEL", KEYS_ENV)}
    os.environ["CHURNFLOW_BENTO_MODEL"] = record.bento_model_tag
    os.environ[KEYS_ENV] = ",".join(KEYS)
    try:
        service = importlib.import_module("churnflow.serving.service")
        with TestClient(service.ChurnService.to_asgi()) as client:
            yield Packaged(cfg, model, service, record.bento_model_tag, client)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _auth(name: str) -> dict[str, str]:
    """Bearer header of one test's own key (each key has its own bucket of 5 requests a minute)."""
    return {"Authorization": f"Bearer k-{name}"}


def test_good_prediction_matches_the_library(packaged: Packaged) -> None:
    events = synthetic_user_events("42", seed=1, n_events=80)
    reply = packaged.client.post("/predict", json={"events": events}, headers=_auth("good"))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    cutoff_ms = max(e["ts"] for e in events) + 1
    assert body["user_id"] == "42"
    assert body["n_events"] == 80
    assert body["cutoff"] == ms_to_iso(cutoff_ms)
    assert body["feature_count"] == len(feature_names(packaged.cfg.features))
    assert (body["model_alias"], body["model_version"]) == ("champion", "1")
    assert body["churn_probability"] == pytest.approx(
        packaged.expected_probability(events, cutoff_ms), abs=1e-12
    )
    assert body["churn_prediction"] == int(body["churn_probability"] >= packaged.model.threshold)
    assert body["risk_level"] in {"low", "medium", "high"}
    assert len(body["prediction_id"]) == 32


def test_explicit_cutoff_is_honoured(packaged: Packaged) -> None:
    events = synthetic_user_events("7", seed=2, n_events=60)
    cutoff_ms = sorted(e["ts"] for e in events)[30]
    post = packaged.client.post
    iso = post("/predict", json={"events": events, "cutoff": ms_to_iso(cutoff_ms)}, headers=_auth("cutoff"))
    epoch = post("/predict", json={"events": events, "cutoff": cutoff_ms}, headers=_auth("cutoff"))
    assert iso.status_code == epoch.status_code == 200, iso.text
    assert iso.json()["cutoff"] == epoch.json()["cutoff"] == ms_to_iso(cutoff_ms)
    assert iso.json()["churn_probability"] == epoch.json()["churn_probability"]
    expected = packaged.expected_probability(events, cutoff_ms)
    assert iso.json()["churn_probability"] == pytest.approx(expected, abs=1e-12)


def test_bad_input_answers_4xx_naming_the_field(packaged: Packaged) -> None:
    events = synthetic_user_events("5", seed=3, n_events=10)
    post, auth = packaged.client.post, _auth("bad")
    bad_ts = post("/predict", json={"events": [*events[:3], {**events[3], "ts": "yesterday"}]}, headers=auth)
    assert bad_ts.status_code == 400, bad_ts.text
    assert bad_ts.json()["field"] == "ts" and bad_ts.json()["index"] == 3
    mixed = [*events, *synthetic_user_events("6", seed=3, n_events=3)]
    two = post("/predict", json={"events": mixed}, headers=auth)
    assert two.status_code == 400 and two.json()["field"] == "userId"
    schema = post("/predict", json={"cutoff": 5}, headers=auth)
    assert schema.status_code == 400 and "events" in schema.text
    big = post("/predict", json={"events": events * 31}, headers=auth)
    assert big.status_code == 413 and big.json()["field"] == "events"


def test_api_keys_and_rate_limit(packaged: Packaged) -> None:
    events = synthetic_user_events("9", seed=4, n_events=20)
    post = packaged.client.post
    assert post("/predict", json={"events": events}).status_code == 401
    assert post("/predict", json={"events": events}, headers={"X-API-Key": "nope"}).status_code == 401
    assert packaged.client.get("/readyz").status_code == 200, "probes need no key"
    codes = [post("/predict", json={"events": events}, headers=_auth("rate")).status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    limited = post("/predict", json={"events": events}, headers=_auth("rate"))
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    other = post("/predict", json={"events": events}, headers={"X-API-Key": "k-other"})
    assert other.status_code == 200, "another key has its own bucket"
    metrics = packaged.client.get("/metrics", headers={"X-API-Key": "k-metrics"})
    assert metrics.status_code == 200
    assert "churnflow_predictions_total{" in metrics.text


def test_service_reads_drift_reference_and_settings_from_the_bento_model(packaged: Packaged) -> None:
    import bentoml

    stored = bentoml.models.get(packaged.tag)
    assert packaged.service.SETTINGS.model_alias == stored.info.metadata["model_alias"] == "champion"
    assert stored.custom_objects["drift_reference"] == {"version": 1}
    assert Path(stored.path_of("mlflow_model")).is_dir()
