"""DVC stage `report`: execute every notebooks/NN_name.py with papermill; write .ipynb + HTML per notebook."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from churnflow.reports.notebooks import (
    discover_notebooks,
    ensure_kernel,
    environ_with,
    home_env_defaults,
    run_notebook,
)
from churnflow.utils.io import atomic_dir

app = typer.Typer(add_completion=False)


@app.command()
def main(
    notebooks: Path = typer.Option(..., help="folder of percent-format NN_name.py notebooks"),
    reports: Path = typer.Option(..., help="reports folder the notebooks read (JSON, figures)"),
    out: Path = typer.Option(..., help="output folder: NN_name.ipynb and NN_name.html"),
    artifacts: Path = typer.Option(Path("artifacts"), help="artifacts folder the notebooks read"),
    params: Path = typer.Option(Path("params.yaml"), help="composed configuration the notebooks read"),
    cache: Path = typer.Option(Path(".cache"), help="home for Jupyter/IPython/Matplotlib when unset"),
) -> None:
    """Run the report notebooks in order; nothing is replaced in OUT unless every notebook succeeds."""
    environ_with(home_env_defaults(cache.resolve(), os.environ))
    kernelspec = ensure_kernel()
    sources = discover_notebooks(notebooks)
    parameters = {"reports_dir": str(reports), "artifacts_dir": str(artifacts), "params_path": str(params)}
    with atomic_dir(out) as tmp:
        for index, source in enumerate(sources, start=1):
            typer.echo(f"[{index}/{len(sources)}] {source.name}")
            run_notebook(source, tmp, parameters, kernelspec, cwd=Path.cwd())
    typer.echo(f"wrote {len(sources)} notebooks (+ HTML) to {out}")


if __name__ == "__main__":
    app()
