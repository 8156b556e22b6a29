"""The ingest command body, shared by ``churnflow load`` (``cli/load.py``) and ``stages/load.py``.

Each entry point parses its own arguments and config, then calls :func:`run_load`: one body, two doors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from churnflow.config.data import DataConfig
from churnflow.data.errors import TooManyBadLinesError
from churnflow.data.load import LoadOutputs, load_to_outputs
from churnflow.data.quality import quality_summary


def run_load(inputs: list[Path], cfg: DataConfig, outputs: LoadOutputs) -> dict[str, Any]:
    """Load ``inputs`` into ``outputs`` with a progress bar and print the quality summary.

    Returns the quality report. Too many bad lines: prints the error (it names the first failures as
    ``file:line: reason``) to stderr, writes nothing and exits 1 (``typer.Exit``).
    """
    try:
        report = load_to_outputs(inputs, cfg, outputs)
    except TooManyBadLinesError as exc:
        typer.echo(f"load failed: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(quality_summary(report))
    return report
