"""The tune → train → evaluate stages as DVC runs them (subprocesses, real Optuna/MLflow/sqlite).

Checks: outputs exist with the contract shapes, the model folder is byte-identical across two trainings
(except registry.json), trials are nested runs under the study run, and the champion gate holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.model.synthetic import make_tables

CONTRACT_TEST_KEYS = {
    "roc_auc",
    "roc_auc_ci",
    "pr_auc",
    "log_loss",
    "brier",
    "ece",
    "f1",
    "precision",
    "recall",
    "threshold",
    "lift_at_10",
    "lift_at_25",
    "capture_at_25",
}


def _run(stage: str, args: list[str], cwd: Path, env: dict[str, str], repo_root: Path) -> str:
    proc = subprocess.run(
        [sys.executable, str(repo_root / "stages" / f"{stage}.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"{stage} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.name != "registry.json"
    }


@pytest.mark.slow
def test_tune_train_evaluate_stages(tmp_path: Path, repo_root: Path) -> None:
    features, labels = make_tables(250, 6, seed=3)
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "data").mkdir()
    features.write_parquet(tmp_path / "artifacts/features.parquet")
    labels.write_parquet(tmp_path / "artifacts/labels.parquet")
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["tune"]["n_trials"] = 4
    params["model"]["fixed"]["n_estimators"] = 60
    params["evaluate"]["bootstrap_samples"] = 100
    params["evaluate"]["shap_sample"] = 100
    params["train"]["promote_auc"] = 0.5  # reachable on synthetic data: exercise a real promotion
    params["tracking"]["registered_model"] = "churn-stage-test"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    io = ["--features", "artifacts/features.parquet", "--labels", "artifacts/labels.parquet"]

    (tmp_path / "artifacts/study.db").write_text("stale")  # the stage must start a fresh study
    _run(
        "tune",
        [*io, "--study", "artifacts/study.db", "--best-params", "artifacts/best_params.json"],
        tmp_path,
        env,
        repo_root,
    )
    best = json.loads((tmp_path / "artifacts/best_params.json").read_text())
    assert (
        best["model"] == "lightgbm"
        and best["n_trials"] == 4
        and set(best["params"]) <= set(params["model"]["search_space"])
    )

    train_args = [
        *io,
        "--best-params",
        "artifacts/best_params.json",
        "--metrics",
        "reports/train_metrics.json",
    ]
    out1 = _run("train", [*train_args, "--model-dir", "artifacts/model"], tmp_path, env, repo_root)
    assert "PROMOTED" in out1
    out2 = _run("train", [*train_args, "--model-dir", "artifacts/model2"], tmp_path, env, repo_root)
    assert "NOT promoted" in out2 and "does not beat champion v1" in out2
    assert _digest(tmp_path / "artifacts/model") == _digest(tmp_path / "artifacts/model2")
    meta = json.loads((tmp_path / "artifacts/model/model_meta.json").read_text())
    assert meta["threshold_choice"]["rule"] == "max_f1" and len(meta["feature_names"]) == 5
    registry = json.loads((tmp_path / "artifacts/model2/registry.json").read_text())
    assert (
        registry["version"] == "2"
        and registry["aliases"] == ["challenger"]
        and registry["champion_version"] == "1"
    )

    _run(
        "evaluate",
        [
            *io,
            "--model-dir",
            "artifacts/model",
            "--raw",
            "data",
            "--metrics",
            "reports/metrics.json",
            "--plots",
            "reports/plots",
            "--figures",
            "reports/figures",
            "--html",
            "reports/evaluation.html",
        ],
        tmp_path,
        env,
        repo_root,
    )
    metrics = json.loads((tmp_path / "reports/metrics.json").read_text())
    assert set(metrics["test"]) >= CONTRACT_TEST_KEYS
    assert {"net_value_top_25", "roi_top_25"} <= set(metrics["business"])
    assert "oracle" not in metrics  # no ground truth in data/
    assert metrics["model"] == "lightgbm" and metrics["model_version"] == "1"
    assert metrics["test"]["roc_auc"] == pytest.approx(meta["test_metrics"]["roc_auc"])
    assert metrics["n_test"] == 250
    for name, cols in {
        "roc": ["fpr", "tpr"],
        "pr": ["recall", "precision"],
        "calibration": ["mean_predicted", "fraction_positive"],
        "lift": ["share_targeted", "capture_rate"],
        "confusion": ["actual", "predicted"],
        "business": ["share_targeted", "net_value", "roi"],
    }.items():
        table = pl.read_csv(tmp_path / f"reports/plots/{name}.csv")
        assert set(cols) <= set(table.columns), name
    assert pl.read_csv(tmp_path / "reports/plots/confusion.csv").height == 250
    assert {"roc.png", "shap_summary.png", "importance_gain.png", "leakage.png"} <= {
        p.name for p in (tmp_path / "reports/figures").iterdir()
    }
    html = (tmp_path / "reports/evaluation.html").read_text()
    assert html.count("data:image/png;base64,") >= 8 and "http" not in html.replace("http-equiv", "")

    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name(params["tracking"]["experiment"])
    runs = client.search_runs([exp.experiment_id], max_results=100)
    study = [r for r in runs if r.info.run_name == "tune-lightgbm"]
    assert len(study) == 1
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == study[0].info.run_id]
    assert len(trials) == 4
    train_run = client.get_run(registry["run_id"])
    assert "data.features_sha256" in train_run.data.tags
    v1_run = client.get_run(json.loads((tmp_path / "artifacts/model/registry.json").read_text())["run_id"])
    assert "eval_test_roc_auc" in v1_run.data.metrics
