"""DVC stage `package`: import the MLflow champion (else challenger, loudly) into the BentoML store.

Reads this run's ``artifacts/model/`` (to tell whether the champion is this run's model and was trained on
this run's data), ``artifacts/drift_reference.json`` (travels with the model) and ``reports/metrics.json``
(its ``test``/``oracle`` blocks are shown by ``GET /models``); writes the deterministic record JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from churnflow.config import load_config
from churnflow.models.tracking import resolve_tracking_uri
from churnflow.serving.packaging import package_model
from churnflow.utils.io import write_json

app = typer.Typer(add_completion=False)
console = Console(stderr=True)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    """Parse a JSON file; a clear CLI error naming the option and the line when it is absent or broken."""
    if not path.is_file():
        raise typer.BadParameter(f"{what} {path} not found", param_hint=what)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(
            f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}", param_hint=what
        ) from exc


@app.command()
def main(
    model_dir: Path = typer.Option(..., help="This run's model folder (train stage)"),
    drift_reference: Path = typer.Option(..., help="Drift reference JSON (travels with the Bento model)"),
    metrics: Path = typer.Option(..., help="reports/metrics.json (its test and oracle blocks are embedded)"),
    record: Path = typer.Option(..., help="Where to write the package record JSON"),
    params: Path = typer.Option(Path("params.yaml"), help="Composed config"),
) -> None:
    """Import ``models:/<registered_model>@champion`` into BentoML and write the record."""
    cfg = load_config(params)
    if not (model_dir / "model_meta.json").is_file():
        raise typer.BadParameter(f"{model_dir}/model_meta.json not found", param_hint="--model-dir")
    reference = _read_json(drift_reference, "--drift-reference")
    evaluation = _read_json(metrics, "--metrics")
    with console.status("packaging the registered champion into the BentoML store"):
        result = package_model(cfg, model_dir, reference, evaluation, resolve_tracking_uri(cfg.tracking))
    for warning in result.record.warnings:
        console.print(f"[bold red]WARNING: {warning}[/bold red]")
    write_json(record, result.record.to_dict())
    console.print(
        f"packaged {result.ref.uri} (MLflow version {result.ref.version}) as BentoML model "
        f"{result.record.bento_model_tag}"
    )


if __name__ == "__main__":
    app()
