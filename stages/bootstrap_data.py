"""Create the configured world in ``data.raw_dir`` with the built-in simulator if the folder holds no events.

Run by ``make run`` (``make run DATA=full``: composed with ``--override data=full``) before DVC: on a fresh
clone with no DVC remote, the same preset and seed regenerate byte-identical files, so the hash recorded in
``data.dvc`` matches. A folder holding the configured world is used as it is; one holding another simulated
world (its truth sidecar says so) is refused with a message; a user's own export is never touched.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

from churnflow.config import Config, load_config
from churnflow.config.params import write_params
from churnflow.data.discover import has_visible_files
from churnflow.data.world import configured_world, recorded_world, world_mismatch


def _config(params: Path, conf: Path, overrides: list[str]) -> Config:
    """``params.yaml`` as it is, or ``conf/`` composed with the overrides by DVC's own code (as
    `dvc exp run -S` will compose it), without touching ``params.yaml``."""
    if not overrides:
        return load_config(params)
    with tempfile.TemporaryDirectory() as tmp:
        composed = Path(tmp) / "params.yaml"
        write_params(conf, composed, overrides)
        return load_config(composed)


def main(
    params: Path = typer.Option(Path("params.yaml"), help="Composed configuration (without --override)."),
    conf: Path = typer.Option(Path("conf"), help="Hydra config folder (with --override)."),
    override: list[str] = typer.Option(
        [],
        "--override",
        "-S",
        help="Hydra override composed from --conf instead of reading --params: data=full (as dvc exp run -S; "
        "other `dvc exp run` options are ignored, so `make run` passes the same ARGS to both).",
    ),
) -> None:
    """Simulate the configured world into ``data.raw_dir`` unless it is there; refuse another world."""
    cfg = _config(params, conf, override)
    raw_dir = Path(cfg.data.raw_dir)
    wanted = configured_world(cfg.data) if cfg.data.source == "simulated" else None
    if has_visible_files(raw_dir):
        problem = world_mismatch(raw_dir, cfg.data)
        if problem is not None:
            typer.echo(f"bootstrap: {problem}", err=True)
            raise typer.Exit(code=1)
        found = recorded_world(raw_dir)
        what = f"the simulated world [{found.describe()}]" if found is not None else "raw events (no sidecar)"
        typer.echo(f"{raw_dir}/ already holds {what}: leaving it as it is.")
        return
    if wanted is None:
        typer.echo(
            f"{raw_dir}/ is empty and data.source={cfg.data.source!r}: drop your export there.", err=True
        )
        raise typer.Exit(code=1)

    from churnflow.simulate import simulate_to_dir

    typer.echo(f"{raw_dir}/ is empty: simulating [{wanted.describe()}] (gzip={cfg.data.gzip}).")
    summary = simulate_to_dir(
        cfg.data.preset,
        cfg.data.seed,
        raw_dir,
        scenario=cfg.data.scenario,
        gzip=cfg.data.gzip,
        change_day=cfg.data.change_day,
    )
    typer.echo(str(summary))


app = typer.Typer(add_completion=False)
app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(main)

if __name__ == "__main__":
    app()
