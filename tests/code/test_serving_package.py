"""The package step against a real MLflow registry (temp sqlite) and a real BentoML store (temp home)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from churnflow.config import Config, to_container
from churnflow.features import feature_names
from churnflow.serving.packaging import load_packaged
from churnflow.serving.settings import (
    DRIFT_REFERENCE_OBJECT,
    MetadataError,
    ServingSettings,
    build_metadata,
    check_feature_coverage,
)
from churnflow.serving.testing import register_and_package, train_tiny_model

FEATURES = ["engagement__songs_7d", "engagement__thumbs_down_28d", "account__tenure_days"]


def _cfg(name: str, promote_auc: float = 0.9) -> Config:
    cfg = Config()
    cfg.tracking.registered_model = name
    cfg.tracking.experiment = f"exp_{name}"
    cfg.serve.bento_model_name = name
    cfg.train.promote_auc = promote_auc
    return cfg


@pytest.mark.slow
def test_champion_is_packaged_with_metadata_and_drift_reference(tmp_path: Path) -> None:
    cfg = _cfg("pkg_champ")
    model, x = train_tiny_model(FEATURES, tmp_path / "model")
    reference = {"version": 1, "columns": {"engagement__songs_7d": {"edges": [0, 1]}}}
    ref, record = register_and_package(cfg, tmp_path / "model", test_roc_auc=0.95, drift_reference=reference)
    assert (ref.alias, record.alias, record.is_champion) == ("champion", "champion", True)
    assert record.bento_model_tag == f"pkg_champ:mlflow-v{ref.version}"
    assert record.model_uri == "models:/pkg_champ@champion"

    import bentoml

    stored = bentoml.models.get(record.bento_model_tag)
    assert stored.custom_objects[DRIFT_REFERENCE_OBJECT] == reference
    pyfunc, settings = load_packaged("pkg_champ:latest")
    assert settings.feature_names == tuple(FEATURES)
    assert settings.model_alias == "champion" and settings.model_version == ref.version
    assert settings.threshold == pytest.approx(model.threshold)
    assert (settings.risk_bands.low, settings.risk_bands.high) == (cfg.serve.risk_low, cfg.serve.risk_high)
    served = pyfunc.predict(x.head(25))["churn_probability"].to_numpy()
    np.testing.assert_allclose(served, model.predict_proba(x.head(25)), rtol=1e-12)

    # a second registration with an equal AUC does not beat the champion: packaging again re-imports the
    # same champion version under the same deterministic tag, replacing (not duplicating) the store entry
    _, again = register_and_package(cfg, tmp_path / "model", test_roc_auc=0.95, drift_reference=reference)
    assert again == record
    assert [str(m.tag) for m in bentoml.models.list("pkg_champ")] == [record.bento_model_tag]


@pytest.mark.slow
def test_package_stage_falls_back_to_challenger_loudly(tmp_path: Path, repo_root: Path) -> None:
    cfg = _cfg("pkg_chall", promote_auc=0.99)
    train_tiny_model(feature_names(cfg.features), tmp_path / "model")  # the stage checks feature coverage
    register_and_package(cfg, tmp_path / "model", test_roc_auc=0.8)  # registers v1 as challenger only
    params = tmp_path / "params.yaml"
    OmegaConf.save(to_container(cfg), params)
    drift = tmp_path / "drift_reference.json"
    drift.write_text(json.dumps({"version": 1}))
    record_path = tmp_path / "bento_model.json"
    cmd = [sys.executable, str(repo_root / "stages" / "package.py"), "--model-dir", str(tmp_path / "model")]
    cmd += ["--drift-reference", str(drift), "--record", str(record_path), "--params", str(params)]
    for _ in range(2):
        done = subprocess.run(cmd, env=dict(os.environ), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "NO @champion" in done.stderr and "challenger" in done.stderr
    record = json.loads(record_path.read_text())
    assert record == {
        "alias": "challenger",
        "bento_model_tag": "pkg_chall:mlflow-v1",
        "is_champion": False,
        "mlflow_version": "1",
        "model_uri": "models:/pkg_chall@challenger",
        "registered_model": "pkg_chall",
    }


def test_metadata_round_trip_and_errors() -> None:
    cfg = Config()
    meta = {"model_name": "lightgbm", "feature_names": FEATURES, "threshold": 0.42}
    built = build_metadata(
        meta,
        registered_model="churn",
        model_version="3",
        model_alias="champion",
        serve=cfg.serve,
        features=cfg.features,
    )
    settings = ServingSettings.from_metadata(json.loads(json.dumps(built)))
    assert settings.feature_names == tuple(FEATURES) and settings.threshold == 0.42
    assert settings.features == cfg.features
    assert settings.api_keys_env == cfg.serve.api_keys_env
    with pytest.raises(MetadataError, match="threshold"):
        build_metadata(
            {"model_name": "x", "feature_names": []},
            registered_model="c",
            model_version="1",
            model_alias="champion",
            serve=cfg.serve,
            features=cfg.features,
        )
    broken = dict(built)
    del broken["feature_names"]
    with pytest.raises(MetadataError, match="feature_names"):
        ServingSettings.from_metadata(broken)
    with pytest.raises(MetadataError, match="metadata_version"):
        ServingSettings.from_metadata({**built, "metadata_version": 99})


def test_feature_coverage_check() -> None:
    check_feature_coverage(["a", "b"], ["b", "a", "c"])
    with pytest.raises(MetadataError, match=r"1 feature\(s\).*'z'"):
        check_feature_coverage(["a", "z"], ["a", "b"])
