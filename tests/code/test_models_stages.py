"""The tune → train → evaluate stages as DVC runs them (subprocesses, real Optuna/MLflow/sqlite).

Checks: outputs exist with the contract shapes, the model folder is byte-identical across two trainings,
trials are nested runs under the study run, evaluate applies the champion gate on the same test rows, and
no DVC output carries a run-dependent value.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.model.synthetic import make_tables

CONTRACT_VIEW_KEYS = {
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
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _evaluate(model_dir: str, reports: str, tmp_path: Path, env: dict[str, str], repo_root: Path) -> str:
    io = ["--features", "artifacts/features.parquet", "--labels", "artifacts/labels.parquet"]
    return _run(
        "evaluate",
        [
            *io,
            "--model-dir",
            model_dir,
            "--raw",
            "data",
            "--metrics",
            f"{reports}/metrics.json",
            "--plots",
            f"{reports}/plots",
            "--figures",
            f"{reports}/figures",
            "--html",
            f"{reports}/evaluation.html",
        ],
        tmp_path,
        env,
        repo_root,
    )


@pytest.mark.slow
def test_tune_train_evaluate_stages(tmp_path: Path, repo_root: Path) -> None:
    features, labels = make_tables(250, 10, seed=3)
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "data").mkdir()
    features.write_parquet(tmp_path / "artifacts/features.parquet")
    labels.write_parquet(tmp_path / "artifacts/labels.parquet")
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["tune"]["n_trials"] = 4
    params["model"]["fixed"]["n_estimators"] = 60
    params["evaluate"]["bootstrap_samples"] = 100
    params["evaluate"]["shap_sample"] = 100
    params["tracking"]["registered_model"] = "churn-stage-test"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    io = ["--features", "artifacts/features.parquet", "--labels", "artifacts/labels.parquet"]

    (tmp_path / "artifacts/study.db").write_text("stale")  # the stage must start a fresh study
    out = _run(
        "tune",
        [
            *io,
            "--study",
            "artifacts/study.db",
            "--best-params",
            "artifacts/best_params.json",
            "--trials",
            "reports/tuning_trials.csv",
        ],
        tmp_path,
        env,
        repo_root,
    )
    assert "purged split" in out
    trials_table = pl.read_csv(tmp_path / "reports/tuning_trials.csv")
    assert trials_table.height == 4 and {"number", "state", "validation_roc_auc"} <= set(trials_table.columns)
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
    assert "registered churn-stage-test v1 as @challenger" in out1
    meta = json.loads((tmp_path / "artifacts/model/model_meta.json").read_text())
    assert meta["threshold_choice"]["rule"] == "max_f1" and len(meta["feature_names"]) == 5
    assert meta["calibration"]["method"] == "platt" and "test_metrics" not in meta
    assert not (tmp_path / "artifacts/model/registry.json").exists()

    out_eval = _evaluate("artifacts/model", "reports", tmp_path, env, repo_root)
    assert "PROMOTED to @champion" in out_eval and "first champion" in out_eval
    metrics = json.loads((tmp_path / "reports/metrics.json").read_text())
    assert set(metrics["test"]["known_customers"]) >= CONTRACT_VIEW_KEYS
    assert {"net_value_top_25", "roi_top_25", "validation_best_share"} <= set(metrics["business"])
    assert "oracle" not in metrics  # no ground truth in data/
    assert "model_version" not in metrics and metrics["model"] == "lightgbm"
    assert metrics["split"]["rows"]["test"] == 250 * params["train"]["n_test_cutoffs"]  # every user
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
    assert (
        pl.read_csv(tmp_path / "reports/plots/confusion.csv").height
        == (metrics["test"]["known_customers"]["n_rows"])
    )
    assert {"roc.png", "calibration.png", "views.png", "shap_summary.png", "leakage.png"} <= {
        p.name for p in (tmp_path / "reports/figures").iterdir()
    }
    html = (tmp_path / "reports/evaluation.html").read_text()
    assert html.count("data:image/png;base64,") >= 9 and not re.search(r"(src|href)=[\"']?https?:", html)

    # the same data + config + seed: byte-identical model folder and reports; the copy cannot beat itself
    out2 = _run("train", [*train_args, "--model-dir", "artifacts/model2"], tmp_path, env, repo_root)
    assert "v2 as @challenger" in out2
    assert _digest(tmp_path / "artifacts/model") == _digest(tmp_path / "artifacts/model2")
    out_eval2 = _evaluate("artifacts/model2", "reports2", tmp_path, env, repo_root)
    assert "NOT promoted" in out_eval2 and "does not beat champion v1" in out_eval2
    assert (tmp_path / "reports/metrics.json").read_bytes() == (
        tmp_path / "reports2/metrics.json"
    ).read_bytes()
    assert (tmp_path / "reports/evaluation.html").read_bytes() == (
        tmp_path / "reports2/evaluation.html"
    ).read_bytes()

    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    name = params["tracking"]["registered_model"]
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    assert str(client.get_model_version_by_alias(name, "challenger").version) == "2"
    assert client.get_model_version(name, "2").tags["promotion"] == "not_promoted"
    exp = client.get_experiment_by_name(params["tracking"]["experiment"])
    runs = client.search_runs([exp.experiment_id], max_results=100)
    study = [r for r in runs if r.info.run_name == "tune-lightgbm"]
    assert len(study) == 1
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == study[0].info.run_id]
    assert len(trials) == 4
    v1_run = client.get_run(client.get_model_version(name, "1").run_id)
    assert "data.features_sha256" in v1_run.data.tags
    assert "eval_test_known_customers_roc_auc" in v1_run.data.metrics
    assert (
        "eval_vs_champion_auc_difference"
        in client.get_run(client.get_model_version(name, "2").run_id).data.metrics
    )
