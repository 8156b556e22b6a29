"""DVC stage `label`: events table → point-in-time churn labels and the churn-definition summary."""

from __future__ import annotations

import warnings
from pathlib import Path

import typer

from churnflow.config import load_config
from churnflow.data.load import read_events
from churnflow.labels import INPUT_COLUMNS, LabelWarning, build_labels
from churnflow.utils.io import write_json, write_parquet


def main(
    events: Path = typer.Option(..., help="events table (Parquet)"),
    labels: Path = typer.Option(..., help="output: label table (Parquet)"),
    summary: Path = typer.Option(..., help="output: churn-definition summary (JSON)"),
    params: Path = typer.Option(Path("params.yaml"), help="composed configuration"),
) -> None:
    """Build labels per (user, cutoff); degenerate results finish with a warning, not a crash."""
    cfg = load_config(params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LabelWarning)
        result = build_labels(read_events(events, INPUT_COLUMNS), cfg.labels)
    write_parquet(result.labels, labels)
    write_json(summary, result.summary)
    s = result.summary
    typer.echo(
        f"labels: {s['n_rows']:,} rows, {s['n_users']:,} users, {s['n_cutoffs']} cutoffs, "
        f"{s['positives']:,} positives; censored: {s['censored']['n_cutoffs']} cutoffs, "
        f"{s['censored']['n_rows']:,} rows removed"
    )
    for message in s["warnings"]:
        typer.echo(f"WARNING: {message}", err=True)


if __name__ == "__main__":
    typer.run(main)
