"""DVC stage `train`: final fit with tuned params → ``artifacts/model/`` (deterministic) + MLflow run/version.

The probe/calibrator/threshold flow is :func:`churnflow.models.training.train_final`; the registered version
gets alias ``challenger`` and the model folder's content hash as tag. Promotion happens in `evaluate`.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import typer

from churnflow.config import load_config
from churnflow.models.artifact import save_churn_model
from churnflow.models.tracking import log_and_register
from churnflow.models.training import (
    describe_model,
    file_sha256,
    join_features_labels,
    make_split,
    split_summary,
    train_final,
)
from churnflow.utils.io import atomic_dir, write_json


def main(
    features: Path = typer.Option(..., help="features table (Parquet)"),
    labels: Path = typer.Option(..., help="labels table (Parquet)"),
    best_params: Path = typer.Option(..., help="tuned parameters (JSON from the tune stage)"),
    model_dir: Path = typer.Option(..., help="output: model folder"),
    metrics: Path = typer.Option(..., help="output: training metrics (JSON, validation only)"),
    params: Path = typer.Option(Path("params.yaml"), help="composed configuration"),
) -> None:
    """Fit, calibrate and choose the decisions on validation (refit with train.refit), save, log, register."""
    cfg = load_config(params)
    best = json.loads(best_params.read_text())
    if best.get("model") != cfg.model.name:
        raise typer.BadParameter(
            f"{best_params} was tuned for model {best.get('model')!r} but params.yaml selects "
            f"{cfg.model.name!r}: re-run the tune stage"
        )
    data = join_features_labels(pl.read_parquet(features), pl.read_parquet(labels))
    split = make_split(data, cfg)
    typer.echo(split_summary(split))
    result = train_final(data, cfg, best["params"], split)
    hashes = {
        "features_sha256": file_sha256(features),
        "labels_sha256": file_sha256(labels),
        "best_params_sha256": file_sha256(best_params),
    }
    result.model.meta = describe_model(result, cfg, hashes)
    v = result.validation_metrics
    run_metrics = {f"validation_{k}": float(val) for k, val in v.items()}
    run_metrics.update({k: float(val) for k, val in result.counts.items()})
    example = data.frame.filter(pl.Series(split.development)).select(data.feature_names).head(5).to_pandas()
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
            tags={"stage": "train", **{f"data.{k}": val for k, val in hashes.items()}},
            input_example=example,
        )
    write_json(
        metrics,
        {
            "validation": v,
            "threshold": result.threshold.threshold,
            "calibration": result.model.calibrator.method,
            **result.counts,
        },
    )
    typer.echo(
        f"train {cfg.model.name}: validation ROC-AUC {v['roc_auc']:.4f}, "
        f"ECE {v['ece_raw']:.3f} → {v['ece']:.3f} "
        f"after {result.model.calibrator.method} calibration; threshold {result.threshold.threshold:.4f} "
        f"({result.threshold.how})\nregistered {registered.registered_model} v{registered.version} as "
        f"@challenger (the evaluate stage decides on @champion)"
    )


if __name__ == "__main__":
    typer.run(main)
