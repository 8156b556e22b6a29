"""Benchmark: wall time of tune (50 Optuna trials) + train (final fit, MLflow log + register) on `mini`.

Goal (issue 6): ≤ 180 s on 2 cores. Reference measured in the same run: one full, unpruned fit of the
default model on the tuning rows (so `ratio` = tune+train time in units of one model fit, comparable
across machines). Data: simulator `mini` (seed 42) → loader → labels → features (not timed in the goal).
Prints the figures and writes benchmarks/results/tune_train.json.

Run: flock /tmp/churnflow-heavy.lock .venv/bin/python benchmarks/bench_tune_train.py [--trials 50]
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd
import polars as pl
import typer

from churnflow.utils.io import write_json

GOAL_S = 180.0


def main(
    trials: int = typer.Option(50, help="Optuna trials"),
    preset: str = typer.Option("mini", help="simulator preset"),
    out: Path = typer.Option(Path("benchmarks/results/tune_train.json"), help="result JSON"),
) -> None:
    """Measure tune + train wall time and write the result JSON."""
    work = Path(tempfile.mkdtemp(prefix="bench-tune-train-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    import mlflow

    from churnflow.config import load_config
    from churnflow.data.load import load_events
    from churnflow.features import compute_features
    from churnflow.labels import build_labels
    from churnflow.models.artifact import save_churn_model
    from churnflow.models.factory import fit_model, merge_params
    from churnflow.models.tracking import configure_mlflow, log_and_register
    from churnflow.models.training import describe_model, join_features_labels, make_split, train_final
    from churnflow.models.tuning import run_study
    from churnflow.simulate import simulate_to_dir

    cfg = load_config("params.yaml")
    cfg.tune.n_trials = trials
    t0 = time.perf_counter()
    simulate_to_dir(preset, 42, work / "data")
    events = load_events([work / "data"], cfg.data).events
    labels = build_labels(events, cfg.labels).labels
    features = compute_features(events, labels.select("user_id", "cutoff"), cfg.features)
    data = join_features_labels(features, labels)
    split = make_split(data, cfg)
    prep_s = time.perf_counter() - t0

    # reference: one full fit of the default model (fixed params, no pruning) on the tuning rows
    t0 = time.perf_counter()
    fit_model(
        cfg.model.name,
        merge_params(cfg.model.fixed, {}),
        data.matrix(split.train),
        data.target(split.train),
        feature_names=data.feature_names,
        seed=cfg.seed,
        class_weight=cfg.train.class_weight,
    )
    reference_s = time.perf_counter() - t0

    configure_mlflow(cfg.tracking)
    t0 = time.perf_counter()
    with mlflow.start_run(run_name=f"tune-{cfg.model.name}"):
        result = run_study(data, split, cfg, storage=f"sqlite:///{work / 'study.db'}", show_progress=True)
    tune_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    trained = train_final(data, cfg, result.best_params, split)
    trained.model.meta = describe_model(trained, cfg, {})
    model_dir = work / "model"
    model_dir.mkdir()
    save_churn_model(trained.model, model_dir)
    example = pd.DataFrame(
        data.frame.filter(pl.Series(split.test)).select(data.feature_names).head(5).to_pandas()
    )
    log_and_register(
        trained.model,
        model_dir,
        cfg,
        params=trained.params,
        metrics={"test_roc_auc": trained.test_metrics["roc_auc"]},
        tags={},
        input_example=example,
    )
    train_s = time.perf_counter() - t0
    total = tune_s + train_s
    payload = {
        "name": "tune_train",
        "preset": preset,
        "model": cfg.model.name,
        "trials": result.n_trials,
        "trials_pruned": result.n_pruned,
        "rows": {
            "tune_train": int(split.train.sum()),
            "validation": int(split.validation.sum()),
            "train": int(split.development.sum()),
            "test": int(split.test.sum()),
        },
        "n_features": len(data.feature_names),
        "prep_s": round(prep_s, 2),
        "reference_one_fit_s": round(reference_s, 3),
        "tune_s": round(tune_s, 2),
        "train_register_s": round(train_s, 2),
        "tune_plus_train_s": round(total, 2),
        "ratio_to_one_fit": round(total / reference_s, 1),
        "goal_s": GOAL_S,
        "goal_met": total <= GOAL_S,
        "best_validation_auc": round(result.best_value, 4),
        "test_auc": round(trained.test_metrics["roc_auc"], 4),
        "cpu_count": os.cpu_count(),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }
    write_json(out, payload)
    print(
        f"tune ({result.n_trials} trials, {result.n_pruned} pruned) {tune_s:.1f} s + train/register "
        f"{train_s:.1f} s = {total:.1f} s (goal ≤ {GOAL_S:.0f} s: {'met' if total <= GOAL_S else 'MISSED'}); "
        f"one fit {reference_s:.2f} s → ratio {total / reference_s:.1f}; "
        f"load avg {payload['load_avg_1m_at_end']}"
    )


if __name__ == "__main__":
    typer.run(main)
