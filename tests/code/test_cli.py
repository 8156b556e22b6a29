"""The installed `churnflow` command: every subcommand exists and documents itself."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from churnflow.cli import app

SUBCOMMANDS = ("simulate", "load", "score", "monitor")


def test_top_level_help_lists_every_subcommand() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for name in SUBCOMMANDS:
        assert name in result.output


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_has_help(name: str) -> None:
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "--out" in result.output or "--events" in result.output


def test_console_script_is_installed() -> None:
    """`pip install -e .` puts `churnflow` beside the interpreter (what the README and e2e tests call)."""
    exe = Path(sys.executable).parent / "churnflow"
    assert exe.exists() or shutil.which("churnflow"), "churnflow console script not installed"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True).stdout
    assert "simulate" in out


def test_unknown_subcommand_fails() -> None:
    result = CliRunner().invoke(app, ["frobnicate"])
    assert result.exit_code != 0
