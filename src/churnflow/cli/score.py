"""`churnflow score --events FILE --out FILE`: batch-score every user of an events file.

Input: raw Sparkify JSON lines (.json/.jsonl, optionally .gz) or Parquet, read by the loader. Output by
extension: ``.csv`` or ``.parquet`` with ``user_id, cutoff, churn_probability, churn_prediction, risk_level``,
each user scored at their last event + 1 ms. The model is the BentoML store entry the service serves.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import typer
from rich.console import Console

from churnflow.config import Config, load_config
from churnflow.utils.io import atomic_path, write_parquet

console = Console(stderr=True)
OUTPUT_SUFFIXES: tuple[str, ...] = (".csv", ".parquet")


def write_scores(scores: pl.DataFrame, out: Path) -> None:
    """Write ``scores`` atomically as CSV (ISO cutoffs) or Parquet, chosen by ``out``'s suffix."""
    suffix = out.suffix.lower()
    if suffix == ".parquet":
        write_parquet(scores, out)
    elif suffix == ".csv":
        with atomic_path(out) as tmp:
            scores.write_csv(tmp, datetime_format="%Y-%m-%dT%H:%M:%S%.3fZ")
    else:
        raise typer.BadParameter(
            f"{out}: unsupported output type {suffix!r}; use .csv or .parquet", param_hint="--out"
        )


def command(
    events: Path = typer.Option(
        ..., "--events", help="Events file: JSON lines (.json, .jsonl, .gz) or Parquet"
    ),
    out: Path = typer.Option(..., "--out", help="Scores file: .csv or .parquet"),
    model: str | None = typer.Option(
        None,
        "--model",
        help="BentoML model tag (default: $CHURNFLOW_BENTO_MODEL or <serve.bento_model_name>:latest)",
    ),
    params: Path = typer.Option(Path("params.yaml"), "--params", help="Composed config (defaults if absent)"),
) -> None:
    """Score every user in ``--events`` with the packaged churn model and write ``--out``."""
    import dataclasses

    from churnflow.data.load import load_events
    from churnflow.serving.loading import ModelLoadError, load_served_model, model_tag_from_env
    from churnflow.serving.scoring import Scorer

    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise typer.BadParameter(f"{out}: use a .csv or .parquet file name", param_hint="--out")
    if not events.is_file():
        raise typer.BadParameter(f"{events} not found", param_hint="--events")
    cfg = load_config(params) if params.is_file() else Config()
    tag = model or model_tag_from_env(cfg.serve.bento_model_name)
    with console.status(f"loading {tag}"):
        try:
            served = load_served_model(tag)
        except ModelLoadError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(code=1) from exc
    settings = served.settings
    for warning in settings.warnings:
        console.print(f"[bold red]WARNING: {warning}[/bold red]")
    # the packaged run's timestamp bounds decide which events are valid, as in the service
    data_cfg = dataclasses.replace(
        cfg.data, min_valid_ts=settings.data_bounds[0], max_valid_ts=settings.data_bounds[1]
    )
    with console.status(f"reading {events}"):
        loaded = load_events([events], data_cfg)
    if loaded.quarantine:
        console.print(f"[yellow]{len(loaded.quarantine)} line(s) quarantined (not scored)[/yellow]")
    with console.status(f"scoring {loaded.events.height:,} events"):
        scores = Scorer(served.model, settings).score_events_frame(loaded.events)
    write_scores(scores, out)
    counts = dict(scores.group_by("risk_level").len().iter_rows())
    console.print(
        f"scored {scores.height:,} users with {settings.registered_model} v{settings.model_version} "
        f"(@{settings.model_alias}, {served.tag}) → {out}  risk: {counts}"
    )
