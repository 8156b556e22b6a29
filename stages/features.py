"""DVC stage `features`: events + labels → feature table (Parquet) and feature catalogue (Markdown)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import typer
from rich.console import Console

from churnflow.config import load_config
from churnflow.features import feature_registry, render_catalog
from churnflow.features.pipeline import features_for_labels
from churnflow.utils.io import write_parquet, write_text


def main(
    events: Path = typer.Option(..., help="events table (Parquet)"),
    labels: Path = typer.Option(..., help="labels table (Parquet): its (user_id, cutoff) rows get features"),
    features: Path = typer.Option(..., help="output: feature table (Parquet)"),
    catalog: Path = typer.Option(..., help="output: feature catalogue (Markdown)"),
    params: Path = typer.Option(Path("params.yaml"), help="composed configuration"),
) -> None:
    """Compute point-in-time features for every labelled (user, cutoff) and write the catalogue."""
    cfg = load_config(params)
    console = Console(stderr=True)
    keys = pl.read_parquet(labels, columns=["user_id", "cutoff"])
    with console.status(f"features: {keys.height:,} (user, cutoff) rows with engine {cfg.features.engine}"):
        table = features_for_labels(events, keys, cfg.features)
    write_parquet(table, features)
    registry = feature_registry(cfg.features)
    write_text(catalog, render_catalog(registry))
    console.print(f"features: {table.height:,} rows x {len(registry)} features → {features}")


if __name__ == "__main__":
    typer.run(main)
