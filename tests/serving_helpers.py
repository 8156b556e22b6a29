"""Test helpers for serving: synthetic raw events, a tiny real model, MLflow registration and packaging.

Everything is seeded: same arguments → same events, same model. The model is a real LightGBM saved in the
train stage's folder layout, logged as the real pyfunc and registered in the (temporary) MLflow registry;
packaging goes through the same library function as the ``package`` stage.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnflow.config import Config
from churnflow.data.schema import PAGES
from churnflow.models.artifact import ChurnModel, save_churn_model
from churnflow.serving.packaging import PackageResult, package_model

DAY_MS = 86_400_000
#: Start of the synthetic calendar (2018-10-01T00:00:00Z, as in Sparkify).
START_MS = 1_538_352_000_000
DATA_HASHES = {"features_sha256": "f" * 64, "labels_sha256": "1" * 64}
_ACTIVE_PAGES: tuple[str, ...] = tuple(
    p for p in PAGES if p not in {"Cancel", "Cancellation Confirmation", "Register", "Submit Registration"}
)


def synthetic_user_events(
    user_id: str, seed: int, n_events: int = 60, days: int = 30
) -> list[dict[str, Any]]:
    """Raw Sparkify event dicts (all 18 keys) of one logged-in user, sorted by ``ts``."""
    rng = np.random.default_rng([seed, zlib.crc32(user_id.encode())])
    ts = np.sort(START_MS + rng.integers(0, days * DAY_MS, size=n_events))
    session_ids = np.cumsum(np.r_[0, np.diff(ts) > 1_800_000]) + zlib.crc32(user_id.encode()) % 100_000 * 1000
    weights = np.array([20.0 if p == "NextSong" else 1.0 for p in _ACTIVE_PAGES])
    pages = rng.choice(np.array(_ACTIVE_PAGES), size=n_events, p=weights / weights.sum())
    out: list[dict[str, Any]] = []
    item = 0
    for i in range(n_events):
        item = 0 if i == 0 or session_ids[i] != session_ids[i - 1] else item + 1
        page = str(pages[i])
        method, status = PAGES[page]
        song = page == "NextSong"
        out.append(
            {
                "artist": f"Artist {rng.integers(0, 50)}" if song else None,
                "auth": "Logged In",
                "firstName": "Ada",
                "gender": "F",
                "itemInSession": item,
                "lastName": "Lovelace",
                "length": float(np.round(rng.uniform(120, 360), 5)) if song else None,
                "level": "paid" if rng.random() < 0.7 else "free",
                "location": "London, UK",
                "method": method,
                "page": page,
                "registration": START_MS - 10 * DAY_MS,
                "sessionId": int(session_ids[i]),
                "song": f"Song {rng.integers(0, 500)}" if song else None,
                "status": status,
                "ts": int(ts[i]),
                "userAgent": "Mozilla/5.0",
                "userId": user_id,
            }
        )
    return out


def train_tiny_model(
    feature_names: list[str],
    model_dir: Path,
    seed: int = 7,
    n_rows: int = 400,
    data_hashes: dict[str, str] | None = None,
    signal: int = 0,
) -> tuple[ChurnModel, pd.DataFrame]:
    """Fit a small LightGBM on a synthetic matrix (the label depends on feature ``signal``); save it.

    Returns ``(ChurnModel, features DataFrame)``; ``model_dir`` receives the train stage's folder layout
    with ``data_hashes`` (default :data:`DATA_HASHES`) in ``model_meta.json``.
    """
    import lightgbm as lgb

    rng = np.random.default_rng(seed)
    x = rng.gamma(2.0, 5.0, size=(n_rows, len(feature_names)))
    col = x[:, signal]
    logit = (col - np.median(col)) / (col.std() + 1e-9) * 2.0
    y = (rng.random(n_rows) < 1 / (1 + np.exp(-logit))).astype(int)
    params = {"objective": "binary", "num_leaves": 7, "min_data_in_leaf": 10, "seed": seed, "num_threads": 1}
    params["verbosity"] = -1
    booster = lgb.train(params, lgb.Dataset(x, label=y), num_boost_round=20)
    model = ChurnModel(
        model_name="lightgbm",
        feature_names=list(feature_names),
        threshold=0.5,
        margin_fn=lambda m: booster.predict(m, raw_score=True),
        native=booster,
        meta={
            "synthetic": True,
            "data_hashes": dict(data_hashes or DATA_HASHES),
            "test_metrics": {"roc_auc": 0.9, "roc_auc_ci": [0.85, 0.95]},
        },
    )
    model_dir.mkdir(parents=True, exist_ok=True)
    save_churn_model(model, model_dir)
    return model, pd.DataFrame(x, columns=feature_names)


def register(cfg: Config, model_dir: Path, alias: str, test_roc_auc: float = 0.95) -> str:
    """Log ``model_dir`` as the real pyfunc, register a new version and point ``alias`` at it; the version."""
    import mlflow

    from churnflow.models.artifact import load_churn_model
    from churnflow.models.tracking import log_and_register, resolve_tracking_uri

    model = load_churn_model(model_dir)
    example = pd.DataFrame(np.ones((2, len(model.feature_names))), columns=model.feature_names)
    registered = log_and_register(
        model,
        model_dir,
        cfg,
        params={"synthetic": True},
        metrics={"test_roc_auc": test_roc_auc},
        tags={f"data.{k}": v for k, v in model.meta.get("data_hashes", {}).items()},
        input_example=example,
    )
    uri = resolve_tracking_uri(cfg.tracking)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    for other in ("champion", "challenger"):  # the test decides the aliases, not the promotion gate
        if other != alias:
            try:
                if (
                    client.get_model_version_by_alias(cfg.tracking.registered_model, other).version
                    == registered.version
                ):
                    client.delete_registered_model_alias(cfg.tracking.registered_model, other)
            except mlflow.exceptions.MlflowException:
                pass
    client.set_registered_model_alias(cfg.tracking.registered_model, alias, registered.version)
    return str(registered.version)


def package(
    cfg: Config,
    model_dir: Path,
    metrics: dict[str, Any] | None = None,
    drift_reference: dict[str, Any] | None = None,
) -> PackageResult:
    """Package the registry's champion (else challenger) as the stage does; ``model_dir`` is this run's."""
    from churnflow.models.tracking import resolve_tracking_uri

    evaluation = metrics if metrics is not None else {"test": {"roc_auc": 0.9, "roc_auc_ci": [0.85, 0.95]}}
    return package_model(cfg, model_dir, drift_reference, evaluation, resolve_tracking_uri(cfg.tracking))


def serving_config(name: str) -> Config:
    """A default config whose MLflow experiment, registered model and Bento model are all ``name``."""
    cfg = Config()
    cfg.tracking.registered_model = cfg.tracking.experiment = cfg.serve.bento_model_name = name
    return cfg


def write_events_jsonl(path: Path, events: list[dict[str, Any]]) -> Path:
    """Raw events as JSON lines (the export format)."""
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def online_drift_reference(feature_names: list[str], window: int = 50) -> dict[str, Any]:
    """A drift reference with the ``online`` section the service's rolling drift score reads.

    Every feature gets edges 0, 1, 10 (bins: null, ≤0, (0,1], (1,10], >10) with even reference shares and
    a PSI threshold of 0.5.
    """
    edges = [0.0, 1.0, 10.0]
    shares = [0.2] * (len(edges) + 2)
    return {
        "online": {
            "features": list(feature_names),
            "edges": [edges] * len(feature_names),
            "shares": [shares] * len(feature_names),
            "thresholds": [0.5] * len(feature_names),
            "window": window,
        }
    }


def settings_for(model: ChurnModel, cfg: Config, alias: str = "champion") -> Any:
    """:class:`ServingSettings` for ``model`` and ``cfg`` through the real metadata round trip (no store)."""
    from churnflow.serving.settings import ServingSettings, build_metadata

    meta = {
        "model_name": model.model_name,
        "feature_names": model.feature_names,
        "threshold": model.threshold,
    }
    metadata = build_metadata(
        meta,
        model={
            "registered_model": cfg.tracking.registered_model,
            "alias": alias,
            "model_name": model.model_name,
            "model_sha256": "0" * 64,
        },
        serve=cfg.serve,
        features=cfg.features,
        data_bounds=(cfg.data.min_valid_ts, cfg.data.max_valid_ts),
        evaluation={"test": {"roc_auc": 0.9}},
        warnings=[],
        registry={"served_version": "1", "champion": None, "challenger": None},
    )
    return ServingSettings.from_metadata(json.loads(json.dumps(metadata)))


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A real ``bentoml serve churnflow.serving.service:ChurnService`` on 127.0.0.1 (context manager)."""

    def __init__(self, env: dict[str, str], log_path: Path, cwd: Path, workers: int | None = None) -> None:
        import os

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {**os.environ, **env}
        if workers is not None:
            self.env["CHURNFLOW_WORKERS"] = str(workers)
        self.cwd = cwd
        self.proc: Any = None

    def start(self) -> Server:
        """Start the process (does not wait)."""
        import subprocess
        import sys

        cmd = [sys.executable, "-m", "bentoml", "serve", "churnflow.serving.service:ChurnService"]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port)]
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            cmd, cwd=self.cwd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        return self

    def log(self) -> str:
        """Everything the server printed so far."""
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 240) -> Server:
        """Poll ``/readyz`` until 200; AssertionError with the log tail if the process dies or times out."""
        import time

        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited {self.proc.returncode}:\n{self.log()[-3000:]}"
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"bentoml serve not ready after {timeout_s}s:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        """Terminate (then kill) the process and close the log."""
        import subprocess

        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if getattr(self, "_log", None) is not None:
            self._log.close()

    def __enter__(self) -> Server:
        return self.start().wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()
