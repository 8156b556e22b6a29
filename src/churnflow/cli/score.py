"""`churnflow score` (being built; replaced by its owner)."""

from __future__ import annotations

import typer


def command() -> None:
    """Not built yet."""
    raise typer.Exit(code=2)
