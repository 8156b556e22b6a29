"""DVC stage `report`: execute every notebooks/NN_name.py with papermill; write .ipynb + HTML per notebook."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from churnflow.reports.notebooks import (
    NotebookOutput,
    discover_notebooks,
    ensure_kernel,
    environ_with,
    home_env_defaults,
    run_notebooks,
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
    jobs: int = typer.Option(0, help="notebooks executed at once (0 = one per CPU core); same bytes for any"),
) -> None:
    """Run the report notebooks in order; nothing is replaced in OUT unless every notebook succeeds."""
    environ_with(home_env_defaults(cache.resolve(), os.environ))
    kernelspec = ensure_kernel()
    sources = discover_notebooks(notebooks)
    parameters = {"reports_dir": str(reports), "artifacts_dir": str(artifacts), "params_path": str(params)}
    finished: list[str] = []

    def say_done(done: NotebookOutput) -> None:
        finished.append(done.source.name)
        typer.echo(f"[{len(finished)}/{len(sources)}] {done.source.name} executed")

    with atomic_dir(out) as tmp:
        jobs = jobs or os.cpu_count() or 1
        run_notebooks(sources, tmp, parameters, kernelspec, Path.cwd(), jobs=jobs, on_done=say_done)
    typer.echo(f"wrote {len(sources)} notebooks (+ HTML) to {out}")


if __name__ == "__main__":
    app()
