"""DVC stage `tune`: Optuna study over the model's search space → best params + the trials table.

The sqlite study (``--study``) is deleted first (fresh, reproducible study) and kept beside the outputs for
Optuna's own tools; it is not a DVC output because sqlite stores the trials' wall-clock times. The
deterministic record is ``--trials`` (one row per trial: state, validation AUC, parameters). Every trial is
also an MLflow run nested under one study run.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import typer

from churnflow.config import load_config, to_container
from churnflow.models.tracking import configure_mlflow
from churnflow.models.training import file_sha256, join_features_labels, make_split, split_summary
from churnflow.models.tuning import run_study
from churnflow.utils.io import atomic_path, write_json


def main(
    features: Path = typer.Option(..., help="features table (Parquet)"),
    labels: Path = typer.Option(..., help="labels table (Parquet)"),
    study: Path = typer.Option(..., help="Optuna sqlite study (deleted and rebuilt; not a DVC output)"),
    best_params: Path = typer.Option(..., help="output: best parameters (JSON)"),
    trials: Path = typer.Option(..., help="output: one row per trial (CSV, deterministic)"),
    params: Path = typer.Option(Path("params.yaml"), help="composed configuration"),
) -> None:
    """Tune on purged tuning-train rows against the latest development cutoffs; test is never used."""
    import mlflow

    cfg = load_config(params)
    data = join_features_labels(pl.read_parquet(features), pl.read_parquet(labels))
    split = make_split(data, cfg)
    typer.echo(split_summary(split))
    study.unlink(missing_ok=True)
    configure_mlflow(cfg.tracking)
    with atomic_path(study) as tmp_db, mlflow.start_run(run_name=f"tune-{cfg.model.name}"):
        mlflow.set_tags(
            {
                "stage": "tune",
                "model": cfg.model.name,
                "data.features_sha256": file_sha256(features),
                "data.labels_sha256": file_sha256(labels),
            }
        )
        mlflow.log_params(
            {"model.name": cfg.model.name, **{f"tune.{k}": v for k, v in to_container(cfg)["tune"].items()}}
        )
        mlflow.log_dict({"feature_names": data.feature_names}, "feature_names.json")
        result = run_study(data, split, cfg, storage=f"sqlite:///{tmp_db.resolve()}")
        mlflow.log_metrics(
            {
                "best_validation_roc_auc": result.best_value,
                "n_pruned": result.n_pruned,
                "n_complete": result.n_complete,
            }
        )
        mlflow.log_dict(result.to_dict(cfg.model.name, cfg.tune), "best_params.json")
    write_json(best_params, result.to_dict(cfg.model.name, cfg.tune))
    with atomic_path(trials) as tmp_csv:
        pl.DataFrame(result.trials).write_csv(tmp_csv, float_precision=6)
    b = result.budget
    sampled = (
        f" (budget tune.max_rows={b['max_rows']}: a seeded sample of {b['train_users']:,} users of the "
        f"{b['train_rows_available']:,} tuning-train rows)"
        if b["train_rows"] < b["train_rows_available"]
        else ""
    )
    typer.echo(
        f"tune {cfg.model.name}: best validation ROC-AUC {result.best_value:.4f} after {result.n_trials} "
        f"trials ({result.n_pruned} pruned) on {b['train_rows']:,} train{sampled} / "
        f"{int(split.validation.sum()):,} validation rows"
    )


if __name__ == "__main__":
    typer.run(main)
