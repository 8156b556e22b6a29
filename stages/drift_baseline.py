"""DVC stage `drift_baseline`: reference bins of the top features and of the model score (PSI baseline)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import typer

from churnflow.config import load_config
from churnflow.models import load_churn_model
from churnflow.monitoring.drift import (
    build_drift_reference,
    cutoffs_from_meta,
    importance_from_model,
    latest_cutoffs,
    select_monitored_features,
    select_reference_rows,
    select_score_rows,
)
from churnflow.utils.io import write_json

app = typer.Typer(add_completion=False)


@app.command()
def main(
    features: Path = typer.Option(..., help="feature table (artifacts/features.parquet)"),
    model_dir: Path = typer.Option(..., help="fitted model folder (artifacts/model)"),
    reference: Path = typer.Option(..., help="output: drift reference JSON"),
    params: Path = typer.Option(Path("params.yaml"), help="composed configuration"),
) -> None:
    """Feature bins from the training rows (all cutoffs but the test ones); score bins from the test rows."""
    cfg = load_config(params)
    table = pl.read_parquet(features)
    model = load_churn_model(model_dir)
    test_cutoffs = cutoffs_from_meta(model.meta, "test") or latest_cutoffs(table, cfg.train.n_test_cutoffs)
    rows = select_reference_rows(table, test_cutoffs, cfg.monitor)
    score_rows = select_score_rows(table, test_cutoffs, cfg.monitor)
    importance = importance_from_model(model.meta, model.native, model.feature_names)
    names = select_monitored_features(model.feature_names, importance, cfg.monitor.n_features)
    typer.echo(f"reference: {rows.height} rows, {len(names)} features; scores of {score_rows.height} rows")
    scores = model.predict_proba(score_rows)
    meta = {
        "reference_split": cfg.monitor.reference_split,
        "test_cutoffs": sorted(test_cutoffs),
        "cutoffs": sorted(rows["cutoff"].unique().to_list()),
        "score_rows": cfg.monitor.score_rows,
        "score_cutoffs": sorted(score_rows["cutoff"].unique().to_list()),
        "model_name": model.model_name,
        "feature_ranking": "model importance (gain)" if importance else "all model features",
    }
    write_json(reference, build_drift_reference(rows, scores, cfg.monitor, names, meta=meta))
    typer.echo(f"wrote {reference}")


if __name__ == "__main__":
    app()
