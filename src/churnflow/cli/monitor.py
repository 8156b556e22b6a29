"""`churnflow monitor --events NEW --out DIR`: check a new export against the served model's reference.

By default the reference and the model are the ones that ship together in the BentoML store
(``$CHURNFLOW_BENTO_MODEL`` or ``<serve.bento_model_name>:latest``, written by the package stage);
``--reference`` with ``--model-dir`` use files instead (e.g. ``artifacts/``). The events are loaded with
the loader, the export's users are put at the training cutoff offsets, scored, and checked
(:func:`churnflow.monitoring.check.run_check`). Writes ``DIR/drift.json`` (status, alerts with severity,
every feature's test, the performance windows), ``DIR/dashboard.html`` (one offline page) and
``DIR/alert_state.json`` (the cooldown state, read again on the next run into the same folder or from
``--state``). Drift is reported, not raised: the exit code is 0 whatever the status, non-zero only for
bad input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()
STATUS_STYLE = {"ok": "green", "warning": "yellow", "critical": "bold red"}


def summary_table(result: Any, max_rows: int = 12) -> Table:
    """Rich table: status, alerts, then the most significant features."""
    table = Table(
        title=f"monitor: {result.status} — {result.summary['n_drifting']} of {result.summary['n_features']} "
        f"features drift ({result.summary['regime']}, {result.window['compared_users']:,} users)"
    )
    table.add_column("column", overflow="fold")
    for column in ("test", "statistic", "p (adj.)", "effect", "drift"):
        table.add_column(column, justify="right", no_wrap=True)
    ordered = sorted(result.features, key=lambda c: (c.p_adjusted, -c.effect_value, c.name))[:max_rows]
    for col in [result.score, *ordered]:
        style = "bold red" if col.drift else "green"
        table.add_row(
            col.name,
            col.test,
            f"{col.statistic:.4g}",
            f"{col.p_adjusted:.3g}",
            f"{col.effect} {col.effect_value:.3f}",
            f"[{style}]{'yes' if col.drift else 'no'}[/{style}]",
        )
    return table


def _read_json(path: Path, hint: str) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise typer.BadParameter(f"{path}: not valid JSON ({err})", param_hint=hint) from err


def command(
    events: Path = typer.Option(..., "--events", help="New raw events: JSON lines (.json, .gz) or Parquet"),
    out: Path = typer.Option(..., "--out", help="Output folder for drift.json and dashboard.html"),
    model: str = typer.Option(
        "",
        "--model",
        help="BentoML model tag (default: $CHURNFLOW_BENTO_MODEL or <serve.bento_model_name>:latest)",
    ),
    reference: Path | None = typer.Option(
        None, "--reference", help="Drift reference JSON instead of the served model's (needs --model-dir)"
    ),
    model_dir: Path | None = typer.Option(None, "--model-dir", help="Fitted model folder (with --reference)"),
    state: Path | None = typer.Option(
        None, "--state", help="Alert cooldown state (default: DIR/alert_state.json)"
    ),
    params: Path = typer.Option(Path("params.yaml"), "--params", help="Composed config (defaults if absent)"),
) -> None:
    """Check ``--events`` against the reference; write drift.json, dashboard.html and the alert state."""
    from churnflow.config import Config, load_config
    from churnflow.data.load import load_events
    from churnflow.monitoring.check import run_check
    from churnflow.monitoring.dashboard import render_dashboard
    from churnflow.monitoring.profile import DriftInputError
    from churnflow.monitoring.served import load_monitor_inputs
    from churnflow.monitoring.windows import current_rows
    from churnflow.utils.io import write_json, write_text

    if not events.exists():
        raise typer.BadParameter(f"{events} not found", param_hint="--events")
    if (reference is None) != (model_dir is None):
        raise typer.BadParameter(
            "give both --reference and --model-dir, or neither", param_hint="--reference"
        )
    for path, hint in ((reference, "--reference"), (model_dir, "--model-dir")):
        if path is not None and not path.exists():
            raise typer.BadParameter(f"{path} not found", param_hint=hint)
    cfg = load_config(params) if params.is_file() else Config()
    ref_payload = _read_json(reference, "--reference") if reference is not None else None
    try:
        inputs = load_monitor_inputs(cfg, model_tag=model or None, reference=ref_payload, model_dir=model_dir)
    except (DriftInputError, RuntimeError) as err:
        raise typer.BadParameter(str(err), param_hint="--model / --reference") from err
    state_path = state or out / "alert_state.json"
    previous = _read_json(state_path, "--state") if state_path.is_file() else {}
    with console.status(f"reading {events}"):
        loaded = load_events([events], cfg.data)
    if loaded.quarantine:
        console.print(f"[yellow]{len(loaded.quarantine)} line(s) quarantined (left out)[/yellow]")
    try:
        with console.status(f"features and scores for {loaded.events['user_id'].n_unique():,} users"):
            rows = current_rows(
                loaded.events, cfg.labels, inputs.features, inputs.model, inputs.reference["offsets_days"]
            )
        with console.status("testing features, score, domain classifier, performance"):
            result, new_state = run_check(
                inputs.reference,
                rows,
                cfg.monitor,
                cfg.evaluate,
                cfg.seed,
                state=previous,
                source=str(events),
            )
    except DriftInputError as err:
        raise typer.BadParameter(str(err), param_hint="--events") from err
    payload = {**result.to_dict(), "reference": inputs.source}
    write_json(out / "drift.json", payload)
    write_text(
        out / "dashboard.html",
        render_dashboard(result, inputs.reference, title=f"churnflow monitor: {events.name}"),
    )
    write_json(state_path, new_state)
    console.print(summary_table(result))
    for alert in result.alerts:
        style = "dim" if alert.suppressed else STATUS_STYLE.get(alert.severity, "")
        note = " (cooldown)" if alert.suppressed else ""
        console.print(f"[{style}]{alert.severity}{note}: {alert.kind} — {alert.message}[/{style}]")
    console.print(
        f"status [{STATUS_STYLE[result.status]}]{result.status}[/{STATUS_STYLE[result.status]}]; "
        f"wrote {out / 'drift.json'} and {out / 'dashboard.html'}"
    )
