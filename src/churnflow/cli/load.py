"""`churnflow load INPUT... --out DIR`: the load stage outside DVC (same body: ``churnflow.data.entry``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from churnflow.config import DataConfig, load_config
from churnflow.data.entry import run_load
from churnflow.data.load import LoadOutputs


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
        try:
            cfg = replace(cfg, max_bad_line_share=max_bad_line_share)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--max-bad-line-share") from exc
    run_load(inputs, cfg, LoadOutputs.in_folder(out))
