"""End to end on tiny simulated data: real `dvc repro`, `dvc exp run -S` and the served model over HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import TINY_OVERRIDES, PipelineRepo

pytestmark = pytest.mark.slow

EXPECTED_OUTPUTS = [
    "artifacts/events.parquet",
    "artifacts/quarantine.jsonl",
    "reports/quality.json",
    "artifacts/labels.parquet",
    "reports/churn_definition.json",
    "artifacts/features.parquet",
    "reports/feature_catalog.md",
    "artifacts/study.db",
    "artifacts/best_params.json",
    "artifacts/model/model_meta.json",
    "reports/metrics.json",
    "reports/evaluation.html",
    "artifacts/drift_reference.json",
    "artifacts/bento_model.json",
]


def test_repro_writes_every_output(tiny_pipeline: PipelineRepo) -> None:
    missing = [p for p in EXPECTED_OUTPUTS if not (tiny_pipeline.root / p).is_file()]
    assert not missing, f"missing outputs: {missing}"
    notebooks = sorted((tiny_pipeline.root / "reports/notebooks").glob("*.ipynb"))
    assert notebooks, "no executed report notebooks"
    assert any((tiny_pipeline.root / "reports/figures").glob("*.png"))


def test_metrics_follow_the_contract(tiny_pipeline: PipelineRepo) -> None:
    metrics = json.loads((tiny_pipeline.root / "reports/metrics.json").read_text())
    known = metrics["test"]["known_customers"]
    for key in ("roc_auc", "roc_auc_ci", "pr_auc", "log_loss", "brier", "ece", "f1", "threshold"):
        assert key in known, key
    assert 0.0 <= known["roc_auc"] <= 1.0
    rows = metrics["split"]["rows"]
    assert rows["development"] > 0 and rows["test"] == rows["known_customers"] + rows["new_users"]
    oracle = metrics["oracle"]["known_customers"]  # tiny is simulated: the Monte-Carlo ceiling is there
    assert known["roc_auc"] <= oracle["roc_auc"] + 0.05 and oracle["model_minus_oracle_ci"][0] <= 0
    assert "model_version" not in metrics
    quality = json.loads((tiny_pipeline.root / "reports/quality.json").read_text())
    assert quality["loaded"] + quality["quarantined"] + quality["duplicates"] == quality["lines_read"]


def test_second_repro_does_nothing(tiny_pipeline: PipelineRepo) -> None:
    status = tiny_pipeline.run("dvc", "status")
    assert "up to date" in status.stdout.lower(), status.stdout
    again = tiny_pipeline.run("dvc", "repro")
    assert "Running stage" not in again.stdout, again.stdout


def test_dvc_metrics_and_plots_read_the_outputs(tiny_pipeline: PipelineRepo) -> None:
    shown = tiny_pipeline.run("dvc", "metrics", "show", "--json")
    assert "roc_auc" in shown.stdout
    out = tiny_pipeline.root / ".plots"
    tiny_pipeline.run("dvc", "plots", "show", "-o", str(out))
    assert (out / "index.html").is_file()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _one_user_events(raw_dir: Path) -> list[dict]:
    """All raw events of the first logged-in user in the simulated file."""
    events_file = next(p for p in sorted(raw_dir.iterdir()) if p.name.startswith("events"))
    user, rows = None, []
    with events_file.open() as handle:
        for line in handle:
            event = json.loads(line)
            if not event["userId"]:
                continue
            user = user or event["userId"]
            if event["userId"] == user:
                rows.append(event)
    return rows


SERVE_KEY = "e2e-pipeline-key-0123456789"


def test_served_model_predicts_over_http(tiny_pipeline: PipelineRepo) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [
            *("bentoml", "serve", "churnflow.serving.service:ChurnService"),
            *("--host", "127.0.0.1", "--port", str(port)),
        ],
        cwd=tiny_pipeline.root,
        env={
            **tiny_pipeline.env,
            "CHURNFLOW_API_KEYS": SERVE_KEY,
        },  # the service refuses to start without keys
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stdout.read() if server.stdout else "server died"
            time.sleep(0.5)
        else:
            pytest.fail("bentoml serve never became ready")
        events = _one_user_events(tiny_pipeline.raw_dir)
        auth = {"Authorization": f"Bearer {SERVE_KEY}"}
        reply = httpx.post(f"{base}/predict", json={"events": events}, headers=auth, timeout=30)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["user_id"] == events[0]["userId"]
        assert 0.0 <= body["churn_probability"] <= 1.0
        assert body["risk_level"] in {"low", "medium", "high"}
        for key in ("churn_prediction", "prediction_id", "model_version"):
            assert key in body
        bad = httpx.post(
            f"{base}/predict", json={"events": [{**events[0], "ts": "yesterday"}]}, headers=auth, timeout=30
        )
        assert 400 <= bad.status_code < 500
        assert "ts" in bad.text
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def test_hydra_experiment_with_overrides(tiny_pipeline: PipelineRepo) -> None:
    """`dvc exp run -S` composes conf/ (here: model=logreg) and `dvc exp show` lists the experiment."""
    overrides = [*TINY_OVERRIDES, "model=logreg"]
    tiny_pipeline.run("dvc", "exp", "run", "-n", "logreg-e2e", *[f"-S{o}" for o in overrides])
    shown = tiny_pipeline.run("dvc", "exp", "show", "--json")
    assert "logreg-e2e" in shown.stdout
