"""`churnflow load INPUT... --out DIR`: the load stage outside DVC."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from churnflow.config import DataConfig, load_config
from churnflow.data.load import TooManyBadLinesError, load_events_to_files, quality_summary, write_quarantine
from churnflow.utils.io import write_json


def command(
    inputs: list[Path] = typer.Argument(..., help="files or folders of JSON lines (.gz too) or Parquet"),
    out: Path = typer.Option(..., "--out", help="output folder"),
    params: Path | None = typer.Option(None, help="params.yaml to take the `data` settings from"),
    max_bad_line_share: float | None = typer.Option(
        None, help="fail above this share of quarantined lines (default: data.max_bad_line_share)"
    ),
) -> None:
    """Write OUT/events.parquet, OUT/anonymous_events.parquet, OUT/quarantine.jsonl and OUT/quality.json."""
    cfg = load_config(params).data if params is not None else DataConfig()
    if max_bad_line_share is not None:
        cfg = replace(cfg, max_bad_line_share=max_bad_line_share)
    try:
        rows, report = load_events_to_files(
            inputs, cfg, out / "events.parquet", out / "anonymous_events.parquet"
        )
    except TooManyBadLinesError as exc:
        typer.echo(f"load failed: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    write_quarantine(rows, out / "quarantine.jsonl")
    write_json(out / "quality.json", report)
    typer.echo(quality_summary(report))
