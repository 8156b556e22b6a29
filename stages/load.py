"""DVC stage `load`: raw export in ``--raw`` → events, anonymous events, quarantine and quality report.

A simulated folder must hold the world the config asks for (its truth sidecar names it): another world is
refused before anything is read, so ``-S data=full`` never runs on what an earlier world left behind.
"""

from __future__ import annotations

from pathlib import Path

import typer

from churnflow.config import load_config
from churnflow.data.entry import run_load
from churnflow.data.load import LoadOutputs
from churnflow.data.world import world_mismatch


def main(
    raw: Path = typer.Option(..., help="raw data folder or file (dvc.yaml passes data.raw_dir)"),
    events: Path = typer.Option(..., help="output: events table (Parquet)"),
    anonymous: Path = typer.Option(..., help="output: empty-userId events (Parquet)"),
    quarantine: Path = typer.Option(..., help="output: quarantined lines (JSON lines)"),
    quality: Path = typer.Option(..., help="output: data-quality report (JSON)"),
    params: Path = typer.Option(Path("params.yaml"), help="composed configuration"),
) -> None:
    """Load, validate, de-duplicate and sort the raw events; fail when too many lines are bad."""
    cfg = load_config(params)
    problem = world_mismatch(raw, cfg.data)
    if problem is not None:
        typer.echo(f"load: refusing to load another world: {problem}", err=True)
        raise typer.Exit(code=1)
    run_load([raw], cfg.data, LoadOutputs(events, anonymous, quarantine, quality))


if __name__ == "__main__":
    typer.run(main)
