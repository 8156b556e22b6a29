"""DVC stage `load`: raw export in ``--raw`` → events, anonymous events, quarantine and quality report."""

from __future__ import annotations

from pathlib import Path

import typer

from churnflow.config import load_config
from churnflow.data.load import TooManyBadLinesError, load_events_to_files, quality_summary, write_quarantine
from churnflow.utils.io import write_json


def main(
    raw: Path = typer.Option(..., help="raw data folder or file"),
    events: Path = typer.Option(..., help="output: events table (Parquet)"),
    anonymous: Path = typer.Option(..., help="output: empty-userId events (Parquet)"),
    quarantine: Path = typer.Option(..., help="output: quarantined lines (JSON lines)"),
    quality: Path = typer.Option(..., help="output: data-quality report (JSON)"),
    params: Path = typer.Option(Path("params.yaml"), help="composed configuration"),
) -> None:
    """Load, validate, de-duplicate and sort the raw events; fail when too many lines are bad."""
    cfg = load_config(params)
    try:
        rows, report = load_events_to_files([raw], cfg.data, events, anonymous)
    except TooManyBadLinesError as exc:
        typer.echo(f"load failed: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    write_quarantine(rows, quarantine)
    write_json(quality, report)
    typer.echo(quality_summary(report))


if __name__ == "__main__":
    typer.run(main)
