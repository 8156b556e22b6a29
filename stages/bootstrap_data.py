"""Create the default raw data in ``data/`` with the built-in simulator when the folder holds no events.

Run by ``make run`` before ``dvc repro``: on a fresh clone with no DVC remote, the same preset and seed
regenerate byte-identical files, so the hash recorded in ``data.dvc`` matches. A user's own export
dropped into ``data/`` is never touched.
"""

from __future__ import annotations

from pathlib import Path

import typer

from churnflow.config import load_config
from churnflow.data.discover import has_visible_files


def main(params: Path = typer.Option(Path("params.yaml"), help="Composed configuration.")) -> None:
    cfg = load_config(params)
    raw_dir = Path(cfg.data.raw_dir)
    if has_visible_files(raw_dir):
        typer.echo(f"{raw_dir}/ already holds raw events: leaving it as it is.")
        return
    if cfg.data.source != "simulated":
        typer.echo(
            f"{raw_dir}/ is empty and data.source={cfg.data.source!r}: drop your export there.", err=True
        )
        raise typer.Exit(code=1)

    from churnflow.simulate import simulate_to_dir

    typer.echo(f"{raw_dir}/ is empty: simulating preset {cfg.data.preset!r} with seed {cfg.data.seed}.")
    summary = simulate_to_dir(
        cfg.data.preset,
        cfg.data.seed,
        raw_dir,
        scenario=cfg.data.scenario,
        gzip=cfg.data.gzip,
        change_day=cfg.data.change_day,
    )
    typer.echo(str(summary))


if __name__ == "__main__":
    typer.run(main)
