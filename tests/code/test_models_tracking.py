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
from churnflow.models.artifact import model_dir_sha256, save_churn_model
from churnflow.models.factory import fit_model
from churnflow.models.tracking import (
    PromotionDecision,
    apply_promotion,
    current_champion,
    decide_promotion,
    find_version,
    load_registered_model,
    log_and_register,
    resolve_tracking_uri,
)

NAMES = ["a", "b", "c"]


def _cmp(diff: float, p_not_better: float) -> dict[str, object]:
    return {"difference": diff, "difference_ci": [diff - 0.02, diff + 0.02], "p_a_not_better": p_not_better}


def test_decide_promotion_gates() -> None:
    gates = TrainConfig(promote_min_oracle_ratio=0.85, promotion_alpha=0.05)
    common = {"train": gates, "leak_alarm": False}
    first = decide_promotion(champion_version=None, comparison=None, oracle_ratio=0.88, **common)
    assert first.promote and "first champion" in first.reason
    real = decide_promotion(champion_version=None, comparison=None, oracle_ratio=None, **common)
    assert real.promote and "no oracle" in real.reason  # real exports have no ceiling
    low = decide_promotion(champion_version=None, comparison=None, oracle_ratio=0.80, **common)
    assert not low.promote and low.quality == "below_floor" and "no champion is set" in low.reason
    better = decide_promotion(champion_version="3", comparison=_cmp(0.03, 0.01), oracle_ratio=0.9, **common)
    assert better.promote and "beats champion v3" in better.reason
    tie = decide_promotion(champion_version="3", comparison=_cmp(0.0, 1.0), oracle_ratio=0.9, **common)
    assert not tie.promote and tie.quality == "not_better" and "does not beat champion v3" in tie.reason
    unsure = decide_promotion(champion_version="3", comparison=_cmp(0.01, 0.2), oracle_ratio=0.9, **common)
    assert not unsure.promote  # better on the point estimate, not beyond the paired interval
    blind = decide_promotion(
        champion_version="3", comparison=None, oracle_ratio=0.9, comparable=False, **common
    )
    assert blind.promote and "cannot score" in blind.reason
    leak = decide_promotion(
        champion_version=None, comparison=None, oracle_ratio=1.2, train=gates, leak_alarm=True
    )
    assert not leak.promote and leak.quality == "leak"


def test_tracking_uri_env_wins_and_relative_sqlite_is_absolute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = resolve_tracking_uri(TrackingConfig(uri="sqlite:///mlflow.db"))
    assert uri == f"sqlite:///{Path.cwd().resolve() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////tmp/elsewhere.db")
    assert resolve_tracking_uri(TrackingConfig(uri="sqlite:///mlflow.db")) == "sqlite:////tmp/elsewhere.db"


def _register(tmp_path: Path, cfg: Config, c: float, tag: str):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = (x[:, 0] + rng.normal(size=300) > 0.5).astype(int)
    model = fit_model("logreg", {"C": c, "max_iter": 500}, x, y, feature_names=NAMES, seed=1)
    folder = tmp_path / tag
    folder.mkdir()
    save_churn_model(model, folder)
    example = pd.DataFrame(x[:5], columns=NAMES)
    reg = log_and_register(
        model,
        folder,
        cfg,
        params={"C": c},
        metrics={"validation_roc_auc": 0.8},
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

    model, v1, x = _register(tmp_path, cfg, 1.0, "v1")  # registered as challenger; no champion yet
    assert v1.version == "1" and v1.aliases == ["challenger"] and v1.champion_version is None
    assert current_champion(client, name) is None
    found = find_version(client, name, model_dir_sha256(tmp_path / "v1"))
    assert found is not None and str(found.version) == "1" and found.run_id == v1.run_id
    assert find_version(client, name, "0" * 64) is None

    apply_promotion(client, name, "1", PromotionDecision(True, "first champion", "promotable"))
    _, v2, _ = _register(tmp_path, cfg, 0.5, "v2")  # a different model: new challenger, champion stays
    assert v2.version == "2" and v2.champion_version == "1"
    apply_promotion(client, name, "2", PromotionDecision(False, "does not beat champion v1", "not_better"))
    assert current_champion(client, name) == "1"
    assert str(client.get_model_version_by_alias(name, "challenger").version) == "2"
    assert client.get_model_version(name, "2").tags["promotion"] == "not_promoted"
    assert client.get_model_version(name, "1").tags["promotion"] == "promoted"

    # the registered pyfunc returns calibrated probabilities (not labels), equal to the library's
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    frame = pd.DataFrame(x[:20], columns=NAMES)
    out = pyfunc.predict(frame)
    assert list(out.columns) == ["churn_probability"]
    assert np.allclose(out["churn_probability"].to_numpy(), model.predict_proba(frame))
    assert pyfunc.metadata.get_input_schema().input_names() == NAMES
    again = load_registered_model(name, "1")
    assert np.allclose(again.predict_proba(frame), model.predict_proba(frame))
    run = client.get_run(v2.run_id)
    assert run.data.tags["data.features_sha256"] == "abc"
