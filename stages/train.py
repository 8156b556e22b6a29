"""DVC stage `train`: final fit with tuned params → ``artifacts/model/`` + MLflow run, registry, aliases."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import typer

from churnflow.config import load_config
from churnflow.models.artifact import REGISTRY_FILE, save_churn_model
from churnflow.models.tracking import log_and_register
from churnflow.models.training import (
    describe_model,
    file_sha256,
    join_features_labels,
    make_split,
    split_warnings,
    train_final,
)
from churnflow.utils.io import atomic_dir, write_json


def main(
    features: Path = typer.Option(..., help="features table (Parquet)"),
    labels: Path = typer.Option(..., help="labels table (Parquet)"),
    best_params: Path = typer.Option(..., help="tuned parameters (JSON from the tune stage)"),
    model_dir: Path = typer.Option(..., help="output: model folder"),
    metrics: Path = typer.Option(..., help="output: training metrics (JSON)"),
    params: Path = typer.Option(Path("params.yaml"), help="composed configuration"),
) -> None:
    """Fit, choose the threshold on validation, score the test cutoffs, save, log, register, gate."""
    cfg = load_config(params)
    best = json.loads(best_params.read_text())
    if best.get("model") != cfg.model.name:
        raise typer.BadParameter(
            f"{best_params} was tuned for model {best.get('model')!r} but params.yaml selects "
            f"{cfg.model.name!r}: re-run the tune stage"
        )
    data = join_features_labels(pl.read_parquet(features), pl.read_parquet(labels))
    split = make_split(data, cfg, n_validation_cutoffs=int(best["n_validation_cutoffs"]))
    for warning in split_warnings(split):
        typer.echo(f"WARNING: {warning}", err=True)
    result = train_final(data, cfg, best["params"], split)
    hashes = {
        "features_sha256": file_sha256(features),
        "labels_sha256": file_sha256(labels),
        "best_params_sha256": file_sha256(best_params),
    }
    result.model.meta = describe_model(result, cfg, hashes)
    t = result.test_metrics
    run_metrics = {f"test_{k}": v for k, v in t.items() if isinstance(v, float)}
    run_metrics["validation_roc_auc"] = result.validation_metrics["roc_auc"]
    run_metrics.update({k: float(v) for k, v in result.counts.items()})
    example = data.frame.filter(pl.Series(split.test)).select(data.feature_names).head(5).to_pandas()
    with atomic_dir(model_dir) as tmp:
        save_churn_model(result.model, tmp)
        registered = log_and_register(
            result.model,
            tmp,
            cfg,
            params={
                "model.name": cfg.model.name,
                **result.params,
                "seed": cfg.seed,
                "train": vars(cfg.train),
            },
            metrics=run_metrics,
            tags={"stage": "train", **{f"data.{k}": v for k, v in hashes.items()}},
            input_example=example,
        )
        write_json(tmp / REGISTRY_FILE, registered.to_dict())
    write_json(
        metrics,
        {
            "validation_roc_auc": result.validation_metrics["roc_auc"],
            "test_roc_auc": t["roc_auc"],
            "test_pr_auc": t["pr_auc"],
            "threshold": result.threshold.threshold,
            **result.counts,
        },
    )
    typer.echo(
        f"train {cfg.model.name}: test ROC-AUC {t['roc_auc']:.4f} "
        f"[{t['roc_auc_ci'][0]:.3f}, {t['roc_auc_ci'][1]:.3f}], "
        f"threshold {result.threshold.threshold:.4f} ({result.threshold.how})\n"
        f"registered {registered.registered_model} v{registered.version} aliases {registered.aliases}: "
        f"{'PROMOTED' if registered.promoted else 'NOT promoted'} — {registered.reason}"
    )
    if registered.champion_version is None:
        typer.echo("WARNING: no champion exists; serving would have to fall back to the challenger", err=True)


if __name__ == "__main__":
    typer.run(main)
