"""DVC stage `load`: raw export in ``--raw`` → events, anonymous events, quarantine and quality report."""

from __future__ import annotations

from pathlib import Path

import typer

from churnflow.config import load_config
from churnflow.data.entry import run_load
from churnflow.data.load import LoadOutputs


def main(
    raw: Path = typer.Option(..., help="raw data folder or file"),
    events: Path = typer.Option(..., help="output: events table (Parquet)"),
    anonymous: Path = typer.Option(..., help="output: empty-userId events (Parquet)"),
    quarantine: Path = typer.Option(..., help="output: quarantined lines (JSON lines)"),
    quality: Path = typer.Option(..., help="output: data-quality report (JSON)"),
    params: Path = typer.Option(Path("params.yaml"), help="composed configuration"),
) -> None:
    """Load, validate, de-duplicate and sort the raw events; fail when too many lines are bad."""
    run_load([raw], load_config(params).data, LoadOutputs(events, anonymous, quarantine, quality))


if __name__ == "__main__":
    typer.run(main)
