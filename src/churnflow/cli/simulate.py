"""`churnflow simulate`: write Sparkify-style events and the ground-truth sidecar into a folder."""

from __future__ import annotations

from pathlib import Path

import typer

from churnflow.simulate import PRESETS, SCENARIOS, simulate_to_dir


def command(
    preset: str = typer.Option("mini", "--preset", help=f"Size of the world: {', '.join(PRESETS)}."),
    seed: int = typer.Option(42, "--seed", help="Random seed: same seed and preset → identical bytes."),
    out: Path = typer.Option(Path("data"), "--out", help="Folder for events.json and _truth/."),
    scenario: str = typer.Option("default", "--scenario", help=f"Scenario: {', '.join(SCENARIOS)}."),
    gzip: bool = typer.Option(False, "--gzip", help="Write events.json.gz (deterministic gzip) instead."),
) -> None:
    """Simulate Sparkify events (JSON lines) with a causal churn story and its ground truth."""
    if preset not in PRESETS:
        raise typer.BadParameter(
            f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}", param_hint="--preset"
        )
    if scenario not in SCENARIOS:
        raise typer.BadParameter(
            f"unknown scenario {scenario!r}; choose one of {sorted(SCENARIOS)}", param_hint="--scenario"
        )
    summary = simulate_to_dir(preset, seed, out, scenario=scenario, gzip=gzip, progress=True)
    typer.echo(str(summary))
