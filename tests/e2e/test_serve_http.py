"""Real `bentoml serve` on 127.0.0.1 (free port) with a tiny packaged model, called over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from churnflow.config import Config
from churnflow.features import feature_names
from churnflow.serving.testing import register_and_package, synthetic_user_events, train_tiny_model

KEY = "e2e-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_bentoml_serve_answers_predict_over_http(tmp_path: Path, repo_root: Path) -> None:
    cfg = Config()
    cfg.tracking.registered_model = cfg.tracking.experiment = cfg.serve.bento_model_name = "http_churn"
    train_tiny_model(feature_names(cfg.features), tmp_path / "model")
    _, record = register_and_package(
        cfg, tmp_path / "model", test_roc_auc=0.95, drift_reference={"version": 1}
    )
    port = _free_port()
    env = {**os.environ, "CHURNFLOW_BENTO_MODEL": record.bento_model_tag, cfg.serve.api_keys_env: KEY}
    cmd = [sys.executable, "-m", "bentoml", "serve", "churnflow.serving.service:ChurnService"]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(cmd, cwd=repo_root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("bentoml serve never became ready:\n" + (tmp_path / "server.log").read_text()[-3000:])
        events = synthetic_user_events("77", seed=9, n_events=50)
        headers = {"Authorization": f"Bearer {KEY}"}
        assert httpx.post(f"{base}/predict", json={"events": events}, timeout=30).status_code == 401
        reply = httpx.post(f"{base}/predict", json={"events": events}, headers=headers, timeout=30)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["user_id"] == "77" and body["n_events"] == 50
        assert 0.0 <= body["churn_probability"] <= 1.0
        assert body["risk_level"] in {"low", "medium", "high"}
        assert (body["model_alias"], body["model_version"]) == ("champion", record.mlflow_version)
        bad = httpx.post(
            f"{base}/predict",
            json={"events": [{**events[0], "ts": "yesterday"}]},
            headers=headers,
            timeout=30,
        )
        assert bad.status_code == 400 and bad.json()["field"] == "ts"
        metrics = httpx.get(f"{base}/metrics", headers=headers, timeout=10)
        assert metrics.status_code == 200 and "churnflow_predictions" in metrics.text
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
