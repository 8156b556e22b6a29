"""Benchmark the Monte-Carlo oracle on a simulated world: runtime, Monte-Carlo error, AUC, calibration.

Run (after ``benchmarks/bench_simulate.py --preset standard --gzip``, or it simulates the world itself):
    .venv/bin/python benchmarks/bench_oracle.py --preset standard --seed 42

Measured on the world's own labels (``churnflow.labels.build_labels`` with the default ``LabelsConfig``):

* the 3 latest usable cutoffs (the default world's test cutoffs): oracle wall and CPU seconds at the default
  draw count (goal: well under 60 s on 2 cores), mean and max Monte-Carlo standard error, ROC-AUC per
  cutoff and pooled with a 95% interval from a user bootstrap, calibration per cutoff (mean p vs label
  rate, z = difference / (sampling + Monte-Carlo error));
* every usable cutoff, on a random budget of rows per cutoff (``--calibration-rows``): calibration per
  cutoff, the sum of z² against its chi-square limit, and the old realised-hazard oracle beside it;
* the AUC of the latent hazard at T alone (``latent_state_features``) for comparison.

The events are read straight from the simulated JSON (the four columns the label function reads); the test
suite checks that the loader keeps every simulated line. Writes ``benchmarks/results/oracle_<preset>.json``.
"""

from __future__ import annotations

import gzip
import os
import platform
import resource
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import typer
from scipy.stats import chi2
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 60.0
UTC_MS = pl.Datetime("ms", "UTC")


def _label_events(folder: Path) -> pl.DataFrame:
    """user_id, ts, page, registration of the logged-in events (what the label function reads)."""
    path = folder / "events.json.gz"
    if path.is_file():
        plain = folder / "events.plain.tmp"
        with gzip.open(path, "rb") as src, plain.open("wb") as dst:
            while chunk := src.read(16 * 1024 * 1024):
                dst.write(chunk)
    else:
        plain = folder / "events.json"
    try:
        frame = (
            pl.scan_ndjson(plain, infer_schema_length=10_000)
            .select("userId", "ts", "page", "registration")
            .filter(pl.col("userId") != "")
            .collect(engine="streaming")
        )
    finally:
        if plain.name.endswith(".tmp"):
            plain.unlink(missing_ok=True)
    return frame.select(
        pl.col("userId").alias("user_id"),
        pl.col("ts").cast(UTC_MS),
        "page",
        pl.col("registration").cast(UTC_MS),
    ).sort("user_id", "ts")


def _auc_ci(frame: pl.DataFrame, col: str, n_boot: int, seed: int) -> tuple[float, float, float]:
    """ROC-AUC of ``col`` against ``label`` and a 95% interval resampling users."""
    users = frame["user_id"].unique().sort()
    idx = {u: i for i, u in enumerate(users.to_list())}
    uid = np.fromiter((idx[u] for u in frame["user_id"].to_list()), dtype=np.int64, count=frame.height)
    y, s = frame["label"].to_numpy(), frame[col].to_numpy()
    rng = np.random.default_rng(seed)
    order = np.argsort(uid, kind="stable")
    bounds = np.searchsorted(uid[order], np.arange(users.len() + 1))
    stats = []
    for _ in range(n_boot):
        pick = rng.integers(0, users.len(), users.len())
        rows = np.concatenate([order[bounds[u] : bounds[u + 1]] for u in pick])
        if 0 < y[rows].sum() < rows.size:
            stats.append(roc_auc_score(y[rows], s[rows]))
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return float(roc_auc_score(y, s)), float(lo), float(hi)


def _calibration(frame: pl.DataFrame) -> pl.DataFrame:
    return (
        frame.group_by("cutoff")
        .agg(
            pl.len().alias("n"),
            pl.col("label").mean().alias("rate"),
            pl.col("p").mean().alias("mean_p"),
            ((pl.col("p") * (1 - pl.col("p"))).sum() + (pl.col("se") ** 2).sum()).sqrt().alias("err"),
        )
        .with_columns(((pl.col("rate") - pl.col("mean_p")) * pl.col("n") / pl.col("err")).alias("z"))
        .sort("cutoff")
    )


def main(
    preset: str = typer.Option("standard", help="Simulator preset."),
    seed: int = typer.Option(42, help="World seed."),
    draws: int = typer.Option(100, help="Monte-Carlo draws per row (the oracle's default)."),
    calibration_rows: int = typer.Option(300, help="Rows per cutoff for the all-cutoff calibration."),
    n_boot: int = typer.Option(300, help="User-bootstrap resamples for the AUC intervals."),
    data: Path = typer.Option(
        None, help="World folder (default benchmarks/data/<preset>; simulated if absent)."
    ),
) -> None:
    """Time and check the oracle; write benchmarks/results/oracle_<preset>.json."""
    from churnflow.config.labels import LabelsConfig
    from churnflow.labels import build_labels
    from churnflow.simulate import (
        OracleResult,
        latent_state_features,
        load_ground_truth,
        oracle_probabilities,
        realised_hazard_probabilities,
        simulate_to_dir,
    )
    from churnflow.utils.io import write_json

    folder = data or ROOT / "benchmarks" / "data" / preset
    truth = load_ground_truth(folder)
    if truth is None or truth["seed"][0] != seed:
        simulate_to_dir(preset, seed, folder, gzip=True)
        truth = load_ground_truth(folder)
    assert truth is not None
    cfg = LabelsConfig()
    events = _label_events(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = build_labels(events, cfg).labels
    cutoffs = labels["cutoff"].unique().sort()
    test = labels.filter(pl.col("cutoff").is_in(cutoffs[-3:].implode()))

    # the 3 latest usable cutoffs, every row
    ru0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    res = oracle_probabilities(
        truth, test.select("user_id", "cutoff"), cfg, n_draws=draws, seed=0, progress=True
    )
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    load = os.getloadavg()[0]
    assert isinstance(res, OracleResult)
    joined = test.join(res.table, on=["user_id", "cutoff"])
    auc, lo, hi = _auc_ci(joined, "p", n_boot, seed)
    per_cutoff = []
    for c in cutoffs[-3:]:
        part = joined.filter(pl.col("cutoff") == c)
        a, a_lo, a_hi = _auc_ci(part, "p", n_boot, seed)
        per_cutoff.append({"cutoff": c.isoformat(), "rows": part.height, "auc": a, "ci95": [a_lo, a_hi]})
    latent = test.join(
        latent_state_features(truth, test.select("user_id", "cutoff")), on=["user_id", "cutoff"]
    )
    hazard_auc = float(roc_auc_score(latent["label"].to_numpy(), latent["latent__hazard"].to_numpy()))
    cal_test = _calibration(joined)

    # every usable cutoff, a budget of rows per cutoff
    sample = labels.filter(pl.int_range(pl.len()).shuffle(seed=seed).over("cutoff") < calibration_rows).sort(
        "cutoff", "user_id"
    )
    t1 = time.perf_counter()
    all_res = oracle_probabilities(truth, sample.select("user_id", "cutoff"), cfg, n_draws=draws, seed=1)
    all_seconds = time.perf_counter() - t1
    assert isinstance(all_res, OracleResult)
    cal_all = _calibration(sample.join(all_res.table, on=["user_id", "cutoff"]))
    chi2_sum = float((cal_all["z"] ** 2).sum())
    old = realised_hazard_probabilities(truth, sample.select("user_id", "cutoff"), cfg.horizon_days)
    old_cal = sample.with_columns(pl.Series("p", old), pl.lit(0.0).alias("se"))
    old_all = _calibration(old_cal)

    result = {
        "preset": preset,
        "seed": seed,
        "n_draws": draws,
        "label_config": {"horizon_days": cfg.horizon_days, "inactivity_days": cfg.inactivity_days},
        "usable_cutoffs": cutoffs.len(),
        "rows_per_cutoff_mean": labels.height / cutoffs.len(),
        "test_cutoffs": {
            "rows": test.height,
            "positives": int(test["label"].sum()),
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "load_average_1min": round(load, 2),
            "ratio_wall_to_goal_60s": round(wall / GOAL_SECONDS, 3),
            "mean_mc_se": res.summary["mean_mc_se"],
            "max_mc_se": res.summary["max_mc_se"],
            "auc": auc,
            "auc_ci95_user_bootstrap": [lo, hi],
            "per_cutoff": per_cutoff,
            "calibration": cal_test.to_dicts(),
            "latent_hazard_at_T_auc": hazard_auc,
        },
        "all_cutoffs_sample": {
            "rows": sample.height,
            "seconds": round(all_seconds, 2),
            "calibration": cal_all.to_dicts(),
            "max_abs_z": float(cal_all["z"].abs().max()),
            "sum_z2": chi2_sum,
            "chi2_999_limit": float(chi2.ppf(0.999, cal_all.height)),
            "mean_rate": float(sample["label"].mean()),
            "mean_p": float(cal_all["mean_p"].mean()),
            "old_realised_hazard_oracle": {
                "mean_p": float(old.mean()),
                "sum_z2": float((old_all["z"] ** 2).sum()),
                "auc": float(roc_auc_score(sample["label"].to_numpy(), old)),
            },
        },
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
    with pl.Config(tbl_rows=60):
        print(cal_test)
        print(cal_all)
    summary = {k: v for k, v in result["test_cutoffs"].items() if k != "calibration"}
    print(summary)
    print({k: v for k, v in result["all_cutoffs_sample"].items() if k != "calibration"})
    write_json(ROOT / "benchmarks" / "results" / f"oracle_{preset}.json", result)


if __name__ == "__main__":
    typer.run(main)
