"""`churnflow monitor --events NEW --out DIR`: drift of new raw events against the training reference.

Loads the events (JSON lines / .gz / Parquet) with the loader, computes features at each user's last event
+ 1 ms, scores them with the model in ``--model-dir`` and compares features and score with the drift
reference (PSI). Writes ``DIR/drift.json`` and ``DIR/drift.html`` and prints a table. Drift is reported,
not raised: the exit code is 0 whatever the status (non-zero only for bad input).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from churnflow.config import Config, load_config
from churnflow.monitoring.drift import DriftReport
from churnflow.utils.io import write_json, write_text

console = Console()
STATUS_STYLE = {"ok": "green", "warn": "yellow", "alert": "bold red"}


def drift_table(report: DriftReport, max_rows: int = 15) -> Table:
    """Rich table: the score, then the features with the largest PSI."""
    table = Table(title=f"drift: {report.status} ({report.n_rows:,} users vs {report.n_reference:,} rows)")
    table.add_column("column", overflow="fold")
    for column in ("PSI", "KS", "nulls ref→new", "status"):
        table.add_column(column, justify="right", no_wrap=True)
    ordered = sorted(report.features, key=lambda f: (-f.psi, f.name))[:max_rows]
    for col in [report.score, *ordered]:
        style = STATUS_STYLE[col.status]
        table.add_row(
            col.name,
            f"{col.psi:.4f}",
            f"{col.ks_binned:.3f}",
            f"{col.null_share_reference:.2f}→{col.null_share_current:.2f}",
            f"[{style}]{col.status}[/{style}]",
        )
    return table


def command(
    events: Path = typer.Option(..., "--events", help="New raw events: JSON lines (.json, .gz) or Parquet"),
    out: Path = typer.Option(..., "--out", help="Output folder for drift.json and drift.html"),
    reference: Path = typer.Option(
        Path("artifacts/drift_reference.json"), "--reference", help="Drift reference (drift_baseline stage)"
    ),
    model_dir: Path = typer.Option(Path("artifacts/model"), "--model-dir", help="Fitted model folder"),
    params: Path = typer.Option(Path("params.yaml"), "--params", help="Composed config (defaults if absent)"),
) -> None:
    """Compare the features and scores of ``--events`` with the drift reference; write JSON + HTML."""
    from churnflow.data.load import load_events
    from churnflow.models import load_churn_model
    from churnflow.monitoring.batch import drift_of_events
    from churnflow.monitoring.report import render_drift_html

    for path, hint in ((events, "--events"), (reference, "--reference"), (model_dir, "--model-dir")):
        if not path.exists():
            raise typer.BadParameter(f"{path} not found", param_hint=hint)
    cfg = load_config(params) if params.is_file() else Config()
    try:
        ref = json.loads(reference.read_text())
    except json.JSONDecodeError as err:
        raise typer.BadParameter(f"{reference}: not valid JSON ({err})", param_hint="--reference") from err
    with console.status(f"reading {events}"):
        loaded = load_events([events], cfg.data)
    if loaded.quarantine:
        console.print(f"[yellow]{len(loaded.quarantine)} line(s) quarantined (left out)[/yellow]")
    with console.status(f"features + scores for {loaded.events['user_id'].n_unique():,} users"):
        model = load_churn_model(model_dir)
        active_days = cfg.labels.inactivity_days if cfg.labels.use_inactivity else None
        report = drift_of_events(loaded.events, ref, model, cfg.features, cfg.monitor, active_days)
    payload = {**report.to_dict(), "events": str(events), "reference": str(reference)}
    write_json(out / "drift.json", payload)
    write_text(out / "drift.html", render_drift_html(report, title=f"churnflow drift report: {events.name}"))
    console.print(drift_table(report))
    console.print(f"wrote {out / 'drift.json'} and {out / 'drift.html'}")
