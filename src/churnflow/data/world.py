"""Which simulated world a raw-data folder holds (its truth sidecar says) and whether the config asks for it.

A simulated world is named by (preset, scenario, change day, seed); the simulator's sidecar
(``<raw_dir>/_truth/ground_truth.parquet``, ``churnflow.simulate.truth``) records them on every row.
``stages/bootstrap_data.py`` refuses to simulate over another world and ``stages/load.py`` refuses to load
one, so ``-S data=full`` can never run on whatever world was left in a folder. This module reads the sidecar
without importing the simulator (so the load stage does not depend on its code); a test checks that the
path and the scenario aliases below are the simulator's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl

from churnflow.config.data import DataConfig

#: the sidecar inside a raw folder (``churnflow.simulate.truth.truth_path``)
SIDECAR: Final[Path] = Path("_truth") / "ground_truth.parquet"
#: the sidecar columns that name the world
WORLD_COLUMNS: Final[tuple[str, ...]] = ("preset", "scenario", "change_day", "seed")
#: scenario aliases the simulator accepts (``churnflow.simulate.presets.SCENARIO_ALIASES``)
SCENARIO_ALIASES: Final[dict[str, str]] = {"default": "baseline"}


@dataclass(frozen=True)
class World:
    """A simulated world's name: the simulator's inputs that fix its bytes (gzip aside)."""

    preset: str
    scenario: str
    change_day: int
    seed: int

    def describe(self) -> str:
        """``preset=full seed=42 scenario=baseline change_day=0``."""
        return f"preset={self.preset} seed={self.seed} scenario={self.scenario} change_day={self.change_day}"


def configured_world(cfg: DataConfig) -> World:
    """The world ``data`` asks for (scenario aliases resolved: ``default`` is ``baseline``)."""
    return World(cfg.preset, SCENARIO_ALIASES.get(cfg.scenario, cfg.scenario), cfg.change_day, cfg.seed)


def recorded_world(raw_dir: Path) -> World | None:
    """The world recorded by ``raw_dir``'s truth sidecar; None when there is no sidecar (e.g. a real export).

    Raises ``ValueError`` naming the file when the sidecar lacks the world's columns or holds several worlds.
    """
    path = Path(raw_dir) / SIDECAR
    if not path.is_file():
        return None
    names = pl.scan_parquet(path).collect_schema().names()
    missing = [c for c in WORLD_COLUMNS if c not in names]
    if missing:
        raise ValueError(f"{path}: ground-truth sidecar without the world's columns {missing}")
    worlds = pl.read_parquet(path, columns=list(WORLD_COLUMNS)).unique()
    if worlds.height != 1:
        raise ValueError(f"{path}: the sidecar records {worlds.height} worlds, expected one")
    row = worlds.row(0, named=True)
    return World(str(row["preset"]), str(row["scenario"]), int(row["change_day"]), int(row["seed"]))


def world_mismatch(raw_dir: Path, cfg: DataConfig) -> str | None:
    """Why ``raw_dir`` cannot serve ``cfg`` (a message naming both worlds), or None when it can.

    Only simulated data is checked: with ``data.source=export`` or no sidecar there is nothing to compare.
    """
    if cfg.source != "simulated":
        return None
    found = recorded_world(raw_dir)
    wanted = configured_world(cfg)
    if found is None or found == wanted:
        return None
    return (
        f"{raw_dir}/ holds the simulated world [{found.describe()}] but the config asks for "
        f"[{wanted.describe()}] (data.preset, data.seed, data.scenario, data.change_day). Each data option "
        f"has its own folder (data.raw_dir, e.g. worlds/<preset>): point data.raw_dir at an empty folder, "
        f"or delete {raw_dir}/ so that `make data` simulates the configured world there."
    )
