"""Build a small but real packaged model (LightGBM → MLflow registry → BentoML store) for tests and demos.

Nothing here is used by the service itself. Everything is seeded: same arguments → same events, same model.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnflow.config import Config
from churnflow.data.schema import PAGES
from churnflow.models.artifact import ChurnModel
from churnflow.serving.packaging import PackageRecord, RegisteredRef, import_to_bentoml, resolve_alias
from churnflow.serving.settings import build_metadata

DAY_MS = 86_400_000
#: Start of the synthetic calendar (2018-10-01T00:00:00Z, as in Sparkify).
START_MS = 1_538_352_000_000
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
    pages = rng.choice(np.array(_ACTIVE_PAGES), size=n_events, p=_page_weights())
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
                "level": "paid",
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


def _page_weights() -> np.ndarray:
    weights = np.array([20.0 if p == "NextSong" else 1.0 for p in _ACTIVE_PAGES])
    return weights / weights.sum()


def train_tiny_model(
    feature_names: list[str], model_dir: Path, seed: int = 7, n_rows: int = 400
) -> tuple[ChurnModel, pd.DataFrame]:
    """Fit a small LightGBM on a synthetic feature matrix (label depends on the first feature); save it.

    Returns ``(ChurnModel, features DataFrame)``; ``model_dir`` receives the train stage's folder layout.
    """
    import lightgbm as lgb

    from churnflow.models.artifact import save_churn_model

    rng = np.random.default_rng(seed)
    x = rng.gamma(2.0, 5.0, size=(n_rows, len(feature_names)))
    logit = (x[:, 0] - np.median(x[:, 0])) / (x[:, 0].std() + 1e-9) * 2.0
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
        meta={"synthetic": True},
    )
    model_dir.mkdir(parents=True, exist_ok=True)
    save_churn_model(model, model_dir)
    return model, pd.DataFrame(x, columns=feature_names)


def register_and_package(
    cfg: Config, model_dir: Path, test_roc_auc: float, drift_reference: dict[str, Any] | None = None
) -> tuple[RegisteredRef, PackageRecord]:
    """Log + register ``model_dir`` (aliases per the champion gate), then package it like the stage does."""
    import json

    import mlflow

    from churnflow.models.artifact import load_churn_model
    from churnflow.models.tracking import log_and_register, resolve_tracking_uri

    model = load_churn_model(model_dir)
    example = pd.DataFrame(np.ones((2, len(model.feature_names))), columns=model.feature_names)
    log_and_register(
        model,
        model_dir,
        cfg,
        params={"synthetic": True},
        metrics={"test_roc_auc": test_roc_auc},
        tags={},
        input_example=example,
    )
    uri = resolve_tracking_uri(cfg.tracking)
    ref = resolve_alias(
        mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri), cfg.tracking.registered_model
    )
    meta = json.loads((model_dir / "model_meta.json").read_text())
    metadata = build_metadata(
        meta,
        registered_model=ref.registered_model,
        model_version=ref.version,
        model_alias=ref.alias,
        serve=cfg.serve,
        features=cfg.features,
    )
    return ref, import_to_bentoml(ref, cfg.serve.bento_model_name, metadata, drift_reference)
