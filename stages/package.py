"""DVC stage `package`: import the MLflow champion (else challenger, loudly) into the BentoML store.

Reads ``artifacts/model/model_meta.json`` and ``artifacts/drift_reference.json``; writes the record JSON
(bento model tag, MLflow version, alias).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from churnflow.config import load_config
from churnflow.features import feature_names
from churnflow.models.tracking import resolve_tracking_uri
from churnflow.serving.packaging import import_to_bentoml, resolve_alias
from churnflow.serving.settings import build_metadata, check_feature_coverage
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
    model_dir: Path = typer.Option(..., help="Model folder from the train stage (holds model_meta.json)"),
    drift_reference: Path = typer.Option(..., help="Drift reference JSON (travels with the Bento model)"),
    record: Path = typer.Option(..., help="Where to write the package record JSON"),
    params: Path = typer.Option(Path("params.yaml"), help="Composed config"),
) -> None:
    """Import ``models:/<registered_model>@champion`` into BentoML and write the record."""
    import mlflow

    cfg = load_config(params)
    model_meta = _read_json(model_dir / "model_meta.json", "--model-dir")
    reference = _read_json(drift_reference, "--drift-reference")
    check_feature_coverage(list(model_meta.get("feature_names", [])), feature_names(cfg.features))
    uri = resolve_tracking_uri(cfg.tracking)
    # bentoml.mlflow.import_model resolves models:/ URIs through MLflow's global registry URI (which an
    # inherited MLFLOW_REGISTRY_URI would otherwise point elsewhere): pin both to the tracking store.
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    with console.status("resolving the registered model alias"):
        ref = resolve_alias(client, cfg.tracking.registered_model)
    if ref.alias != "champion":
        console.print(
            f"[bold red]WARNING: {cfg.tracking.registered_model!r} has NO @champion alias "
            "(no version passed the promotion gate). "
            f"Packaging @{ref.alias} (version {ref.version}) instead: not a champion.[/bold red]"
        )
    metadata = build_metadata(
        model_meta,
        registered_model=ref.registered_model,
        model_version=ref.version,
        model_alias=ref.alias,
        serve=cfg.serve,
        features=cfg.features,
    )
    with console.status(f"importing {ref.uri} into the BentoML store"):
        result = import_to_bentoml(ref, cfg.serve.bento_model_name, metadata, reference)
    write_json(record, result.to_dict())
    console.print(f"packaged {ref.uri} (version {ref.version}) as BentoML model {result.bento_model_tag}")


if __name__ == "__main__":
    app()
