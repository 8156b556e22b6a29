"""The `churnflow` command-line tool: work outside DVC, one subcommand per library step."""

from __future__ import annotations

import typer

from churnflow.cli import load, monitor, score, simulate

app = typer.Typer(
    name="churnflow",
    help="Churn prediction from raw Sparkify-style event logs.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("simulate")(simulate.command)
app.command("load")(load.command)
app.command("score")(score.command)
app.command("monitor")(monitor.command)
