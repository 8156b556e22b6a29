"""The simulator's ground truth for the evaluation: Monte-Carlo oracle and true latent state per row.

Real exports have no ``_truth/`` sidecar: :func:`ground_truth_for` returns None and the evaluation reports
no ceiling. The oracle's cost grows with rows × draws; ``evaluate.oracle_max_rows`` caps the rows by a
seeded sample of users (the coverage string says so in the report).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl

from churnflow.config import Config
from churnflow.evaluation.evaluate import GroundTruth
from churnflow.models.splits import TimeSplit, user_bucket
from churnflow.models.training import Dataset


def _budget_mask(keys: pl.DataFrame, max_rows: int, seed: int) -> np.ndarray:
    """Rows of a seeded sample of users holding at most ``max_rows`` rows (all rows when 0 or enough)."""
    if max_rows <= 0 or keys.height <= max_rows:
        return np.ones(keys.height, dtype=bool)
    bucket = user_bucket(keys.get_column("user_id"), seed + 7)
    order = np.argsort(bucket, kind="stable")
    cutoff_value = bucket[order][max_rows - 1]
    return bucket <= cutoff_value


def ground_truth_for(
    raw_dir: Path, data: Dataset, split: TimeSplit, cfg: Config, *, progress: bool = False
) -> GroundTruth | None:
    """Oracle probabilities for the test rows and latent state for development and test rows, or None."""
    from churnflow.simulate import load_ground_truth

    truth = load_ground_truth(raw_dir)
    if truth is None:
        return None
    from churnflow.simulate import latent_state_features, oracle_probabilities

    ev = cfg.evaluate
    test_keys = data.frame.filter(pl.Series(split.test)).select("user_id", "cutoff")
    sel = _budget_mask(test_keys, ev.oracle_max_rows, cfg.seed)
    oracle = oracle_probabilities(
        truth,
        test_keys.filter(pl.Series(sel)),
        cfg.labels,
        n_draws=ev.oracle_draws,
        seed=cfg.seed,
        progress=progress,
        n_threads=ev.oracle_threads or os.cpu_count() or 1,
    )
    assert not isinstance(oracle, np.ndarray)
    p = np.full(test_keys.height, np.nan)
    se = np.full(test_keys.height, np.nan)
    p[sel] = oracle.table.get_column("p").cast(pl.Float64).fill_null(np.nan).to_numpy()
    se[sel] = oracle.table.get_column("se").cast(pl.Float64).fill_null(np.nan).to_numpy()
    coverage = (
        f"{int(sel.sum()):,} of {test_keys.height:,} test rows"
        + ("" if sel.all() else f" (seeded sample of users: evaluate.oracle_max_rows={ev.oracle_max_rows})")
        + f", {ev.oracle_draws} Monte-Carlo draws each"
    )
    names: list[str] = []
    latent_dev = latent_test = None
    if ev.latent_model:
        dev_keys = data.frame.filter(pl.Series(split.development)).select("user_id", "cutoff")
        dev = latent_state_features(truth, dev_keys)
        tst = latent_state_features(truth, test_keys)
        names = [c for c in dev.columns if c not in ("user_id", "cutoff")]
        latent_dev = dev.select(pl.col(names).cast(pl.Float64)).to_numpy()
        latent_test = tst.select(pl.col(names).cast(pl.Float64)).to_numpy()
    return GroundTruth(p, se, ev.oracle_draws, coverage, names, latent_dev, latent_test)
