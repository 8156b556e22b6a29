"""Which world a raw folder holds (the truth sidecar) and the tuning budget's seeded user sample."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnflow.config.data import DataConfig
from churnflow.data.world import SCENARIO_ALIASES, SIDECAR, configured_world, recorded_world, world_mismatch
from churnflow.models.tuning import budget_rows
from churnflow.simulate import presets, simulate_to_dir, truth


def test_the_world_module_reads_the_simulators_sidecar() -> None:
    """world.py does not import the simulator (the load stage does not depend on it): same names here."""
    assert Path(truth.TRUTH_DIR) / truth.TRUTH_FILE == SIDECAR
    assert SCENARIO_ALIASES == presets.SCENARIO_ALIASES


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world") / "tiny"
    simulate_to_dir("tiny", 3, out, progress=False)
    return out


def test_a_folder_serves_only_the_world_it_holds(tiny_world: Path, tmp_path: Path) -> None:
    cfg = replace(DataConfig(), raw_dir=str(tiny_world), preset="tiny", seed=3, scenario="default")
    assert recorded_world(tiny_world) == configured_world(cfg)  # alias "default" is "baseline"
    assert world_mismatch(tiny_world, cfg) is None
    other = replace(cfg, seed=4)
    message = world_mismatch(tiny_world, other)
    assert message is not None and "seed=3" in message and "seed=4" in message
    assert world_mismatch(tiny_world, replace(other, source="export")) is None  # exports are not checked
    assert recorded_world(tmp_path) is None and world_mismatch(tmp_path, other) is None  # no sidecar


@settings(max_examples=40, deadline=None)
@given(
    rows_per_user=st.lists(st.integers(1, 6), min_size=1, max_size=40),
    max_rows=st.integers(0, 120),
    seed=st.integers(0, 5),
)
def test_the_tuning_budget_keeps_whole_users_and_nests(
    rows_per_user: list[int], max_rows: int, seed: int
) -> None:
    users = pl.Series("user_id", [f"u{i}" for i, n in enumerate(rows_per_user) for _ in range(n)])
    mask = np.ones(len(users), dtype=bool)
    mask[::7] = False  # rows outside the tuning-train split stay out
    kept = budget_rows(users, mask, max_rows, seed)
    assert not (kept & ~mask).any()
    if max_rows == 0 or mask.sum() <= max_rows:
        assert (kept == mask).all()
        return
    assert kept.any()
    kept_users = set(users.filter(pl.Series(kept)).to_list())
    in_mask = users.filter(pl.Series(mask))
    n_kept_rows = int(in_mask.is_in(list(kept_users)).sum())
    assert n_kept_rows == int(kept.sum())  # whole users: every split row of a kept user
    assert kept.sum() <= max_rows or len(kept_users) == 1  # at least one user, even over budget
    larger = budget_rows(users, mask, max_rows + 10, seed)
    assert not (kept & ~larger).any()  # a larger budget keeps a superset
