"""Start-up of the real service: refusals (no keys, corrupt model) and rate limits shared by two workers.

The refusals run the real ``bentoml serve`` and check it exits with status 2 and ONE clear line instead
of restarting a worker behind an open port. The two-worker test needs Debian's ``redis-server`` (installed
by ``.ci/run``); without it, it is skipped with that reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from churnflow.features import feature_names
from churnflow.serving.auth import KeyConfigError
from churnflow.serving.loading import model_dir_of
from churnflow.serving.ratelimit import StorageUnavailable
from churnflow.serving.startup import StartupError, prepare, prepare_or_exit
from tests.serving_helpers import (
    Server,
    free_port,
    online_drift_reference,
    package,
    register,
    serving_config,
    synthetic_user_events,
    train_tiny_model,
)

pytestmark = pytest.mark.slow
KEY = "startup-key-0123456789"


@pytest.fixture(scope="module")
def tag(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("startup")
    cfg = serving_config("startup_churn")
    model, _ = train_tiny_model(feature_names(cfg.features), root / "model")
    register(cfg, root / "model", "champion")
    return package(
        cfg, root / "model", None, online_drift_reference(model.feature_names[:3])
    ).record.bento_model_tag


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURNFLOW_")}
    return {**env, **extra}


def test_start_up_rules(
    tag: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base = {"CHURNFLOW_BENTO_MODEL": tag}
    with pytest.raises(StartupError, match="no API keys"):
        prepare(base)
    with pytest.raises(KeyConfigError, match="shorter"):
        prepare({**base, "CHURNFLOW_API_KEYS": "short"})
    with pytest.raises(StartupError, match="multiply"):
        prepare({**base, "CHURNFLOW_API_KEYS": KEY, "CHURNFLOW_WORKERS": "2"})
    unreachable = f"redis://127.0.0.1:{free_port()}"
    with pytest.raises(StorageUnavailable, match="unreachable"):
        prepare({**base, "CHURNFLOW_API_KEYS": KEY, "CHURNFLOW_RATE_LIMIT_STORAGE": unreachable})
    ok = prepare({**base, "CHURNFLOW_API_KEYS": f"{KEY}:7"})
    assert ok.keyring is not None and ok.keyring.keys[0].requests_per_hour == 7 and ok.workers == 1
    monkeypatch.setenv("CHURNFLOW_BENTO_MODEL", tag)
    monkeypatch.delenv("CHURNFLOW_API_KEYS", raising=False)
    monkeypatch.delenv("CHURNFLOW_API_KEYS_FILE", raising=False)
    monkeypatch.setenv("CHURNFLOW_INSECURE_DEV", "1")
    insecure = prepare_or_exit()
    assert insecure.keyring is None
    assert "serving WITHOUT API KEYS" in capsys.readouterr().err
    monkeypatch.delenv("CHURNFLOW_INSECURE_DEV")
    with pytest.raises(SystemExit) as refused:
        prepare_or_exit()
    assert refused.value.code == 2


def _refusal(env: dict[str, str], tmp_path: Path) -> tuple[int, str, float]:
    """Run ``bentoml serve`` until it exits; (status, output, seconds)."""
    cmd = [sys.executable, "-m", "bentoml", "serve", "churnflow.serving.service:ChurnService"]
    cmd += ["--host", "127.0.0.1", "--port", str(free_port())]
    start = time.monotonic()
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - start


def test_no_keys_refuses_to_start(tag: str, tmp_path: Path) -> None:
    status, output, seconds = _refusal(_clean_env(CHURNFLOW_BENTO_MODEL=tag), tmp_path)
    assert status == 2, output[-3000:]
    lines = [ln for ln in output.splitlines() if "refusing to start" in ln]
    assert len(lines) == 1 and "no API keys" in lines[0] and "CHURNFLOW_INSECURE_DEV=1" in lines[0]
    assert "Traceback" not in output
    print(f"no-key refusal after {seconds:.1f}s")


def test_corrupt_model_stops_start_up(tag: str, tmp_path: Path) -> None:
    import bentoml

    store = Path(bentoml.models.get(tag).path)
    copy = tmp_path / "entry"
    shutil.copytree(store, copy)
    model_file = model_dir_of(store / "mlflow_model") / "model.txt"
    try:
        model_file.write_bytes(model_file.read_bytes()[:300])  # truncated
        env = _clean_env(CHURNFLOW_BENTO_MODEL=tag, CHURNFLOW_API_KEYS=KEY)
        status, output, seconds = _refusal(env, tmp_path)
    finally:
        shutil.rmtree(store)
        shutil.copytree(copy, store)
    assert status == 2, output[-3000:]
    lines = [ln for ln in output.splitlines() if "refusing to start" in ln]
    assert len(lines) == 1 and tag in lines[0] and "differ from what was packaged" in lines[0]
    assert "Traceback" not in output and "worker" not in output.lower()
    print(f"corrupt-model refusal after {seconds:.1f}s")


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (.ci/run installs Debian's redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_limits_hold_across_two_workers_with_redis(tag: str, redis_url: str, tmp_path: Path) -> None:
    keys = ",".join([f"{KEY}:1000", *(f"limited-key-{i}-0123456789:10" for i in range(5))])
    env = {
        "CHURNFLOW_BENTO_MODEL": tag,
        "CHURNFLOW_API_KEYS": keys,
        "CHURNFLOW_RATE_LIMIT_STORAGE": redis_url,
    }
    with Server(env, tmp_path / "server.log", tmp_path, workers=2) as server:
        pids = set()
        for _ in range(200):  # a new connection per request: the kernel spreads them over the workers
            pids.add(
                httpx.get(f"{server.base}/health", headers={"X-API-Key": KEY}, timeout=30).json()[
                    "worker_pid"
                ]
            )
            if len(pids) == 2:
                break
        assert len(pids) == 2, "two workers answer"
        for i in range(5):  # a fresh key until its 10 allowed requests were served by both workers
            allowed_pids, statuses = set(), []
            for _ in range(20):
                reply = httpx.get(
                    f"{server.base}/health", headers={"X-API-Key": f"limited-key-{i}-0123456789"}
                )
                statuses.append(reply.status_code)
                if reply.status_code == 200:
                    allowed_pids.add(reply.json()["worker_pid"])
            assert statuses.count(200) == 10 and statuses.count(429) == 10, statuses
            if len(allowed_pids) == 2:
                break
        assert len(allowed_pids) == 2, "the shared budget was spent in both workers"
        body = {"events": synthetic_user_events("1", seed=1, n_events=30)}
        assert httpx.post(f"{server.base}/predict", json=body, headers={"X-API-Key": KEY}).status_code == 200
