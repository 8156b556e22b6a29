"""Create the default raw data in ``data/`` with the built-in simulator when the folder holds no events.

Run by ``make run`` before ``dvc repro``: on a fresh clone with no DVC remote, the same preset and seed
regenerate byte-identical files, so the hash recorded in ``data.dvc`` matches. A user's own export
dropped into ``data/`` is never touched.
"""

from __future__ import annotations

from pathlib import Path

import typer

from churnflow.config import load_config


def _has_events(raw_dir: Path) -> bool:
    """True when ``raw_dir`` holds any visible file (names starting with '_' or '.' are sidecars)."""
    if not raw_dir.is_dir():
        return False
    return any(
        p.is_file() and not any(part.startswith(("_", ".")) for part in p.relative_to(raw_dir).parts)
        for p in raw_dir.rglob("*")
    )


def main(params: Path = typer.Option(Path("params.yaml"), help="Composed configuration.")) -> None:
    cfg = load_config(params)
    raw_dir = Path(cfg.data.raw_dir)
    if _has_events(raw_dir):
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
        cfg.data.preset, cfg.data.seed, raw_dir, scenario=cfg.data.scenario, gzip=cfg.data.gzip
    )
    typer.echo(str(summary))


if __name__ == "__main__":
    typer.run(main)
