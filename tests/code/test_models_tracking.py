"""MLflow logging, registry, aliases and the champion gate against a real (temporary sqlite) MLflow store."""

from __future__ import annotations

import uuid
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from churnflow.config import Config, TrackingConfig, TrainConfig
from churnflow.models.artifact import save_churn_model
from churnflow.models.factory import fit_model
from churnflow.models.tracking import (
    decide_promotion,
    log_and_register,
    resolve_tracking_uri,
)

NAMES = ["a", "b", "c"]


def test_decide_promotion_gates() -> None:
    gates = TrainConfig(staging_auc=0.85, promote_auc=0.90)
    first = decide_promotion(0.93, None, None, gates)
    assert first.promote and first.quality == "promotable" and "first champion" in first.reason
    low = decide_promotion(0.87, None, None, gates)
    assert not low.promote and low.quality == "staging" and "below the promotion gate" in low.reason
    assert "no champion is set" in low.reason
    worse = decide_promotion(0.92, 0.95, "3", gates)
    assert not worse.promote and "does not beat champion v3" in worse.reason
    tie = decide_promotion(0.95, 0.95, "3", gates)
    assert not tie.promote
    better = decide_promotion(0.96, 0.95, "3", gates)
    assert better.promote and "beats champion v3" in better.reason
    assert decide_promotion(0.6, 0.95, "3", gates).quality == "below_staging"


def test_tracking_uri_env_wins_and_relative_sqlite_is_absolute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = resolve_tracking_uri(TrackingConfig(uri="sqlite:///mlflow.db"))
    assert uri == f"sqlite:///{Path.cwd().resolve() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////tmp/elsewhere.db")
    assert resolve_tracking_uri(TrackingConfig(uri="sqlite:///mlflow.db")) == "sqlite:////tmp/elsewhere.db"


def _register(tmp_path: Path, cfg: Config, auc: float, tag: str):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = (x[:, 0] + rng.normal(size=300) > 0.5).astype(int)
    model = fit_model("logreg", {"C": 1.0, "max_iter": 500}, x, y, feature_names=NAMES, seed=1)
    folder = tmp_path / tag
    folder.mkdir()
    save_churn_model(model, folder)
    example = pd.DataFrame(x[:5], columns=NAMES)
    reg = log_and_register(
        model,
        folder,
        cfg,
        params={"C": 1.0},
        metrics={"test_roc_auc": auc},
        tags={"data.features_sha256": "abc"},
        input_example=example,
    )
    return model, reg, x


@pytest.mark.slow
def test_register_aliases_and_pyfunc_returns_probabilities(tmp_path: Path) -> None:
    cfg = Config()
    cfg.tracking.registered_model = f"churn-test-{uuid.uuid4().hex[:8]}"
    name = cfg.tracking.registered_model
    client = MlflowClient()

    model, v1, x = _register(tmp_path, cfg, 0.80, "v1")  # below the gate: challenger only, no champion
    assert v1.version == "1" and v1.aliases == ["challenger"] and not v1.promoted
    assert v1.champion_version is None and "no champion is set" in v1.reason

    _, v2, _ = _register(tmp_path, cfg, 0.93, "v2")  # passes: first champion
    assert v2.promoted and set(v2.aliases) == {"challenger", "champion"}
    assert str(client.get_model_version_by_alias(name, "champion").version) == "2"

    _, v3, _ = _register(tmp_path, cfg, 0.91, "v3")  # passes the gate but does not beat the champion
    assert not v3.promoted and v3.previous_champion_auc == pytest.approx(0.93)
    assert str(client.get_model_version_by_alias(name, "champion").version) == "2"
    assert str(client.get_model_version_by_alias(name, "challenger").version) == "3"
    assert client.get_model_version(name, "3").tags["promotion"] == "not_promoted"

    # the registered pyfunc returns probabilities (not labels), equal to the library's
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}@challenger")
    frame = pd.DataFrame(x[:20], columns=NAMES)
    out = pyfunc.predict(frame)
    assert list(out.columns) == ["churn_probability"]
    assert np.allclose(out["churn_probability"].to_numpy(), model.predict_proba(frame))
    assert pyfunc.metadata.get_input_schema().input_names() == NAMES
    run = client.get_run(v3.run_id)
    assert run.data.metrics["test_roc_auc"] == pytest.approx(0.91)
    assert run.data.tags["data.features_sha256"] == "abc"
