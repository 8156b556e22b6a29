"""`churnflow simulate`: write Sparkify-style events and the ground-truth sidecar into a folder."""

from __future__ import annotations

from pathlib import Path

import typer

from churnflow.simulate import PRESETS, SCENARIOS, simulate_to_dir
from churnflow.simulate.presets import SCENARIO_ALIASES, scenario_name


def command(
    preset: str = typer.Option("mini", "--preset", help=f"Size of the world: {', '.join(PRESETS)}."),
    seed: int = typer.Option(42, "--seed", help="Random seed: same seed and preset → identical bytes."),
    out: Path = typer.Option(Path("data"), "--out", help="Folder for events.json and _truth/."),
    scenario: str = typer.Option(
        "baseline",
        "--scenario",
        help=f"Scenario: {', '.join(SCENARIOS)} ('default' = baseline).",
    ),
    change_day: int = typer.Option(
        0, "--change-day", help="Day (from the start) the scenario's changes begin; 0 = the whole world."
    ),
    gzip: bool = typer.Option(False, "--gzip", help="Write events.json.gz (deterministic gzip) instead."),
) -> None:
    """Simulate Sparkify events (JSON lines) with a causal churn story and its ground truth."""
    if preset not in PRESETS:
        raise typer.BadParameter(
            f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}", param_hint="--preset"
        )
    try:
        scenario_name(scenario)
    except ValueError:
        known = sorted([*SCENARIOS, *SCENARIO_ALIASES])
        raise typer.BadParameter(
            f"unknown scenario {scenario!r}; choose one of {known}", param_hint="--scenario"
        ) from None
    if change_day < 0:
        raise typer.BadParameter(f"must be >= 0, got {change_day}", param_hint="--change-day")
    summary = simulate_to_dir(
        preset, seed, out, scenario=scenario, gzip=gzip, progress=True, change_day=change_day
    )
    typer.echo(str(summary))
