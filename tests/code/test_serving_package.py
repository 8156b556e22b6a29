"""Packaging against a real MLflow registry (temp sqlite) and BentoML store (temp home), and loading it back.

Covers: the deterministic record and tag, the evaluation blocks, the registry facts (champion/challenger),
a champion trained on other data being named, the challenger fallback through the stage, and a store
entry that cannot serve (truncated model file, garbage pickle, missing metadata, feature-list mismatch).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from churnflow.config import Config, to_container
from churnflow.features import feature_names
from churnflow.serving.loading import ModelLoadError, load_served_model, model_dir_of
from churnflow.serving.settings import METADATA_KEY, MetadataError, ServingSettings, check_feature_coverage
from tests.serving_helpers import (
    online_drift_reference,
    package,
    register,
    serving_config,
    settings_for,
    train_tiny_model,
)

METRICS = {
    "test": {"known_customers": {"roc_auc": 0.91, "roc_auc_ci": [0.88, 0.94], "n_rows": 120}},
    "oracle": {"known_customers": {"roc_auc": 0.95, "model_over_oracle": 0.96}},
    "business": {"ignored": True},
}


def _store_entry(tag: str) -> Path:
    import bentoml

    return Path(bentoml.models.get(tag).path)


@pytest.mark.slow
def test_champion_is_packaged_deterministically_with_metrics_and_registry_facts(tmp_path: Path) -> None:
    cfg = serving_config("pkg_champ")
    model, x = train_tiny_model(feature_names(cfg.features), tmp_path / "model")
    version = register(cfg, tmp_path / "model", "champion")
    reference = online_drift_reference(model.feature_names[:5])
    first = package(cfg, tmp_path / "model", METRICS, reference)
    record = first.record
    assert (record.alias, record.is_champion, record.is_this_runs_model) == ("champion", True, True)
    assert record.trained_on_this_runs_data is True and record.warnings == []
    name, tag = record.bento_model_tag.split(":")
    # a content hash, not the MLflow version (a version number may well occur inside a hex digest)
    assert name == "pkg_champ" and tag != version and re.fullmatch(r"[0-9a-f]{20}", tag), tag
    meta = first.metadata
    assert meta["evaluation"]["test"] == METRICS["test"] and meta["evaluation"]["oracle"] == METRICS["oracle"]
    assert "business" not in meta["evaluation"] and meta["evaluation"]["describes_served_model"] is True
    champion = meta["registry"]["champion"]
    assert champion["version"] == version and champion["trained_at"].startswith("20")
    assert champion["test_metrics"]["roc_auc_ci"] == [0.85, 0.95], "the version's own test metrics with CI"
    assert champion["features"] == model.feature_names
    assert meta["data_bounds"] == {
        "min_valid_ts": cfg.data.min_valid_ts,
        "max_valid_ts": cfg.data.max_valid_ts,
    }

    served = load_served_model("pkg_champ:latest")
    assert served.tag == record.bento_model_tag and served.drift_reference == reference
    assert served.settings.model_version == version and served.settings.serve == cfg.serve
    np.testing.assert_allclose(
        served.model.predict_proba_matrix(x.to_numpy()[:25]), model.predict_proba_matrix(x.to_numpy()[:25])
    )
    # packaging the same inputs again: same tag, same record, the store entry replaced (not duplicated)
    import bentoml

    again = package(cfg, tmp_path / "model", METRICS, reference)
    assert again.record == record
    assert [str(m.tag) for m in bentoml.models.list("pkg_champ")] == [record.bento_model_tag]
    changed = package(cfg, tmp_path / "model", {**METRICS, "oracle": {}}, reference)
    assert changed.record.bento_model_tag != record.bento_model_tag, "the tag follows the content"


@pytest.mark.slow
def test_a_champion_trained_on_other_data_is_named(tmp_path: Path) -> None:
    cfg = serving_config("pkg_other")
    names = feature_names(cfg.features)
    old_hashes = {"features_sha256": "a" * 64, "labels_sha256": "b" * 64}
    train_tiny_model(names, tmp_path / "old", data_hashes=old_hashes, seed=1)
    register(cfg, tmp_path / "old", "champion")
    train_tiny_model(names, tmp_path / "model", seed=2)  # this run: other data, only a challenger
    register(cfg, tmp_path / "model", "challenger")
    result = package(cfg, tmp_path / "model", METRICS)
    record = result.record
    assert record.alias == "champion" and record.is_this_runs_model is False
    assert record.trained_on_this_runs_data is False
    assert any("OTHER data" in w for w in record.warnings), record.warnings
    assert any("not the model this run trained" in w for w in record.warnings)
    evaluation = result.metadata["evaluation"]
    assert evaluation["describes_served_model"] is False and "NOT the served one" in evaluation["note"]
    registry = result.metadata["registry"]
    assert registry["challenger"]["trained_on_this_runs_data"] is True
    assert registry["champion"]["trained_on_this_runs_data"] is False


@pytest.mark.slow
def test_package_stage_falls_back_to_challenger_loudly(tmp_path: Path, repo_root: Path) -> None:
    cfg = serving_config("pkg_chall")
    train_tiny_model(feature_names(cfg.features), tmp_path / "model")
    register(cfg, tmp_path / "model", "challenger")
    params = tmp_path / "params.yaml"
    OmegaConf.save(to_container(cfg), params)
    drift = tmp_path / "drift_reference.json"
    drift.write_text(json.dumps(online_drift_reference(["activity__events_all"])))
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps(METRICS))
    record_path = tmp_path / "bento_model.json"
    cmd = [sys.executable, str(repo_root / "stages" / "package.py"), "--model-dir", str(tmp_path / "model")]
    cmd += ["--drift-reference", str(drift), "--metrics", str(metrics), "--record", str(record_path)]
    cmd += ["--params", str(params)]
    outputs = []
    for _ in range(2):
        done = subprocess.run(cmd, env=dict(os.environ), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "WARNING" in done.stderr and "no @champion" in done.stderr
        outputs.append(record_path.read_bytes())
    assert outputs[0] == outputs[1], "a re-run writes byte-identical records"
    record = json.loads(outputs[0])
    assert (record["alias"], record["is_champion"], record["model_uri"]) == (
        "challenger",
        False,
        "models:/pkg_chall@challenger",
    )
    assert "mlflow_version" not in record and not any("version" in k for k in record), "nothing run-dependent"
    missing = subprocess.run(
        [
            *cmd[:6],
            "--metrics",
            str(tmp_path / "none.json"),
            "--record",
            str(record_path),
            "--params",
            str(params),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missing.returncode != 0 and "--metrics" in missing.stderr


def _edit_metadata(tag: str, edit: Any) -> None:
    path = _store_entry(tag) / "model.yaml"
    info = yaml.safe_load(path.read_text())
    metadata = json.loads(info["metadata"][METADATA_KEY])
    edit(metadata)
    info["metadata"][METADATA_KEY] = json.dumps(metadata)
    path.write_text(yaml.safe_dump(info))


@pytest.mark.slow
def test_a_store_entry_that_cannot_serve_fails_with_one_clear_message(tmp_path: Path) -> None:
    cfg = serving_config("pkg_bad")
    model, _ = train_tiny_model(feature_names(cfg.features), tmp_path / "model")
    register(cfg, tmp_path / "model", "champion")
    tag = package(
        cfg, tmp_path / "model", METRICS, online_drift_reference(model.feature_names[:3])
    ).record.bento_model_tag
    entry = _store_entry(tag)
    pristine = tmp_path / "pristine"
    shutil.copytree(entry, pristine)

    def corrupted(damage: Any, match: str) -> None:
        damage()
        try:
            with pytest.raises(ModelLoadError, match=match) as caught:
                load_served_model(tag)
            assert tag in str(caught.value) and "\n" not in str(caught.value), "one line naming the model"
        finally:
            shutil.rmtree(entry)
            shutil.copytree(pristine, entry)

    model_file = model_dir_of(entry / "mlflow_model") / "model.txt"
    corrupted(lambda: model_file.write_bytes(model_file.read_bytes()[:200]), "differ from what was packaged")
    pickle = entry / "mlflow_model" / "python_model.pkl"
    corrupted(lambda: pickle.write_bytes(b"not a pickle"), "corrupt")
    corrupted(lambda: _edit_metadata(tag, lambda m: m.pop("threshold")), "lacks key 'threshold'")
    corrupted(
        lambda: _edit_metadata(tag, lambda m: m.__setitem__("feature_names", m["feature_names"][::-1])),
        "feature-list mismatch",
    )
    drift = entry / "drift_reference.json"
    corrupted(lambda: drift.write_text(json.dumps({"online": {}})), "differ from what was packaged")
    with pytest.raises(ModelLoadError, match="not in the BentoML store"):
        load_served_model("pkg_bad:doesnotexist")
    assert load_served_model(tag).settings.registered_model == "pkg_bad", "the restored entry serves"


def test_metadata_round_trip_and_errors(tmp_path: Path) -> None:
    cfg = Config()
    cfg.serve.top_reasons = 3
    model, _ = train_tiny_model(["a", "b"], tmp_path / "model")
    settings = settings_for(model, cfg)
    assert settings.feature_names == ("a", "b") and settings.threshold == model.threshold
    assert settings.features == cfg.features and settings.serve == cfg.serve
    assert settings.limits().min_ts_ms == 946_684_800_000
    with pytest.raises(MetadataError, match="metadata_version"):
        ServingSettings.from_metadata({"metadata_version": 1})
    with pytest.raises(MetadataError, match="lacks key 'model'"):
        ServingSettings.from_metadata({"metadata_version": 2})


def test_feature_coverage_check() -> None:
    check_feature_coverage(["a", "b"], ["b", "a", "c"])
    with pytest.raises(MetadataError, match=r"1 feature\(s\).*'z'"):
        check_feature_coverage(["a", "z"], ["a", "b"])
