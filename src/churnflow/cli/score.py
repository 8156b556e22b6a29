"""`churnflow score --events FILE --out FILE`: batch-score every user of an events file.

The model is the packaged one (BentoML store).

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
    import os

    from churnflow.data.load import load_events
    from churnflow.serving.packaging import load_packaged
    from churnflow.serving.scoring import score_events_frame

    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise typer.BadParameter(f"{out}: use a .csv or .parquet file name", param_hint="--out")
    if not events.is_file():
        raise typer.BadParameter(f"{events} not found", param_hint="--events")
    cfg = load_config(params) if params.is_file() else Config()
    tag = model or os.environ.get("CHURNFLOW_BENTO_MODEL") or f"{cfg.serve.bento_model_name}:latest"
    with console.status(f"loading {tag}"):
        try:
            pyfunc, settings = load_packaged(tag)
        except LookupError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(code=1) from exc
    if settings.model_alias != "champion":
        console.print(
            f"[bold red]WARNING: {tag} is the {settings.model_alias!r}, not a promoted champion[/bold red]"
        )
    with console.status(f"reading {events}"):
        loaded = load_events([events], cfg.data)
    if loaded.quarantine:
        console.print(f"[yellow]{len(loaded.quarantine)} line(s) quarantined (not scored)[/yellow]")
    with console.status(f"scoring {loaded.events.height:,} events"):
        scores = score_events_frame(loaded.events, pyfunc, settings)
    write_scores(scores, out)
    counts = dict(scores.group_by("risk_level").len().iter_rows())
    console.print(
        f"scored {scores.height:,} users with {settings.registered_model} v{settings.model_version} "
        f"(@{settings.model_alias}) → {out}  risk: {counts}"
    )
