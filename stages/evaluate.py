"""DVC stage `evaluate`: out-of-time test metrics, DVC plot tables, figures, HTML report; logged to MLflow."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import typer

from churnflow.config import load_config
from churnflow.evaluation.evaluate import check_split_matches, evaluate_model, oracle_for_test
from churnflow.evaluation.report import render_html
from churnflow.models import load_churn_model
from churnflow.models.artifact import read_registry
from churnflow.models.training import join_features_labels, make_split
from churnflow.utils.io import atomic_dir, write_json, write_text


def main(
    features: Path = typer.Option(..., help="features table (Parquet)"),
    labels: Path = typer.Option(..., help="labels table (Parquet)"),
    model_dir: Path = typer.Option(..., help="model folder from the train stage"),
    raw: Path = typer.Option(
        ..., help="raw data folder (its _truth/ sidecar gives the oracle, if simulated)"
    ),
    metrics: Path = typer.Option(..., help="output: metrics JSON (dvc metrics)"),
    plots: Path = typer.Option(..., help="output: folder of plot tables (dvc plots)"),
    figures: Path = typer.Option(..., help="output: folder of PNG figures"),
    html: Path = typer.Option(..., help="output: self-contained HTML report"),
    params: Path = typer.Option(Path("params.yaml"), help="composed configuration"),
) -> None:
    """Evaluate the trained model on the latest cutoffs (never seen by tuning) and report."""
    cfg = load_config(params)
    model = load_churn_model(model_dir)
    registry = read_registry(model_dir)
    data = join_features_labels(pl.read_parquet(features), pl.read_parquet(labels))
    split = make_split(data, cfg)
    check_split_matches(model, split)
    oracle_p = oracle_for_test(raw, data, split, cfg.labels.horizon_days)
    version = registry.get("version") if registry else None
    result = evaluate_model(model, data, split, cfg, model_version=version, oracle_p=oracle_p)
    write_json(metrics, result.metrics)
    with atomic_dir(plots) as tmp:
        for name, table in result.tables.items():
            table.write_csv(tmp / f"{name}.csv", float_precision=6)
    with atomic_dir(figures) as tmp:
        for name, png in result.figures.items():
            (tmp / f"{name}.png").write_bytes(png)
    write_text(html, render_html(result, model.meta, registry))
    if registry:
        from churnflow.evaluation.tracking import log_evaluation

        log_evaluation(registry, cfg, result, metrics, plots, figures, html)
    t = result.metrics["test"]
    typer.echo(
        f"evaluate {model.model_name}: test ROC-AUC {t['roc_auc']:.4f} "
        f"[{t['roc_auc_ci'][0]:.3f}, {t['roc_auc_ci'][1]:.3f}], PR-AUC {t['pr_auc']:.4f}, "
        f"F1 {t['f1']:.3f} @ {t['threshold']:.3f}, lift@10 {t['lift_at_10']:.2f}"
    )
    for message in result.messages:
        typer.echo(message)


if __name__ == "__main__":
    typer.run(main)
