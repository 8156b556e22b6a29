"""DVC stage `drift_baseline`: the drift reference the served model ships with, and a self-check.

Reads the training table, labels, events and model; writes ``artifacts/drift_reference.json`` (see
``churnflow.monitoring.reference``) and ``reports/drift/`` — ``drift.json`` and ``dashboard.html`` of
the self-check (held-out users the model never saw, checked like a new export).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import typer

from churnflow.config import load_config
from churnflow.data.load import read_events
from churnflow.features import compute_features
from churnflow.models import load_churn_model
from churnflow.models.training import join_features_labels, make_split
from churnflow.monitoring.baseline import baseline_rows, last_event_keys, self_check_rows
from churnflow.monitoring.check import run_check
from churnflow.monitoring.dashboard import render_dashboard
from churnflow.monitoring.reference import build_reference
from churnflow.monitoring.windows import export_day0
from churnflow.utils.io import atomic_dir, write_json, write_text

app = typer.Typer(add_completion=False)


@app.command()
def main(
    features: Path = typer.Option(..., help="feature table (artifacts/features.parquet)"),
    labels: Path = typer.Option(..., help="label table (artifacts/labels.parquet)"),
    events: Path = typer.Option(..., help="events table (artifacts/events.parquet)"),
    model_dir: Path = typer.Option(..., help="fitted model folder (artifacts/model)"),
    reference: Path = typer.Option(..., help="output: drift reference JSON"),
    check_dir: Path = typer.Option(..., help="output folder: the self-check's drift.json and dashboard.html"),
    params: Path = typer.Option(Path("params.yaml"), help="composed configuration"),
) -> None:
    """Reference from the development rows, score reference and self-check from held-out users."""
    cfg = load_config(params)
    data = join_features_labels(pl.read_parquet(features), pl.read_parquet(labels))
    split = make_split(data, cfg)
    model = load_churn_model(model_dir)
    rows = baseline_rows(data.frame, split, cfg.seed)
    ev = read_events(events)
    day0 = export_day0(ev)
    online_keys = last_event_keys(ev, rows.development, cfg.monitor.online_reference_users, cfg.seed)
    online_users = online_keys["user_id"].unique().implode()
    online = compute_features(ev.filter(pl.col("user_id").is_in(online_users)), online_keys, cfg.features)
    typer.echo(
        f"reference: {rows.development.height:,} development rows, {len(model.feature_names)} features; "
        f"score reference: {rows.score_rows.height:,} {rows.score_source} rows; "
        f"online: {online.height:,} rows"
    )
    ref = build_reference(
        rows.development,
        model.feature_names,
        day0,
        rows.score_rows,
        model.predict_proba(rows.score_rows),
        cfg.monitor,
        cfg.evaluate,
        cfg.seed,
        score_source=rows.score_source,
        online_features=online,
        meta={"model_name": model.model_name, "split": split.describe(), "day0": day0.isoformat()},
    )
    write_json(reference, ref)
    with atomic_dir(check_dir) as tmp:
        if rows.self_check is None:
            note = {
                "status": "no self-check",
                "reason": f"too few held-out users to halve (score reference: {rows.score_source} rows)",
            }
            write_json(tmp / "drift.json", note)
            typer.echo(f"wrote {reference}; no held-out users, so no self-check")
            return
        scores = model.predict_proba(rows.self_check)
        current = self_check_rows(rows.self_check, scores, day0, ref["offsets_days"])
        result, _ = run_check(
            ref, current, cfg.monitor, cfg.evaluate, cfg.seed, source="self-check: held-out users"
        )
        write_json(tmp / "drift.json", result.to_dict())
        write_text(tmp / "dashboard.html", render_dashboard(result, ref, title="churnflow self-check"))
    typer.echo(
        f"wrote {reference}; self-check {result.status} "
        f"({result.summary['n_drifting']} drifting) → {check_dir}"
    )


if __name__ == "__main__":
    app()
