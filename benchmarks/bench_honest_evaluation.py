"""Benchmark: honest churn figures on the default world and on two worlds no setting was tuned on.

For each world (simulator preset ``standard``: seed 42 = the default data; seed 7; seed 11 with the
``drifted`` scenario) it runs the library exactly as the DVC stages do — load → labels → features →
Optuna tuning → purged training with a validation-fitted calibrator → evaluation with the Monte-Carlo
oracle and the latent-state model — and records:

* known-customer and new-user test ROC-AUC with user-bootstrap 95% intervals;
* the oracle AUC, model/oracle ratio (paired interval) against the goal ``evaluate.oracle_goal_ratio``;
* the latent-state model's AUC (how much of the gap lies in the features);
* ECE and mean predicted vs churn rate on the known-customer test rows;
* the usual whole-history, user-level set-up on the same world (features over each user's whole log,
  label = ever cancelled, random user split): the kind of figure circulating for Sparkify, and how far it
  overstates the honest one.

Prints a table and writes ``benchmarks/results/honest_evaluation.json``.
Run: ``.venv/bin/python benchmarks/bench_honest_evaluation.py`` (about 4 minutes per world on 2 cores).
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import typer

from churnflow.utils.io import write_json

WORLDS: tuple[tuple[str, int, str], ...] = (
    ("standard", 42, "baseline"),
    ("standard", 7, "baseline"),
    ("standard", 11, "drifted"),
)


def usual_sparkify_setup(events: pl.DataFrame, cfg: Any, seed: int) -> dict[str, float]:
    """The common notebook set-up: one row per user, features over the user's WHOLE log (after any
    cancellation too), label = the user ever reached Cancellation Confirmation, random 80/20 user split,
    the same model family with its fixed parameters. Returns its test ROC-AUC."""
    from sklearn.metrics import roc_auc_score

    from churnflow.features import compute_features
    from churnflow.models.factory import fit_model

    users = events.group_by("user_id").agg(
        (pl.col("ts").max() + pl.duration(milliseconds=1)).alias("cutoff"),
        (pl.col("page") == "Cancellation Confirmation").any().cast(pl.Int8).alias("label"),
    )
    users = users.filter(pl.col("user_id") != "").sort("user_id")
    feats = compute_features(events, users.select("user_id", "cutoff"), cfg.features)
    table = users.join(feats, on=["user_id", "cutoff"], how="left")
    names = [c for c in feats.columns if c not in ("user_id", "cutoff")]
    x = table.select(pl.col(names).cast(pl.Float64)).to_numpy()
    y = table["label"].to_numpy().astype(np.int64)
    rng = np.random.default_rng(seed)
    test = rng.random(len(y)) < 0.2
    model = fit_model(
        cfg.model.name, dict(cfg.model.fixed), x[~test], y[~test], feature_names=names, seed=seed
    )
    return {
        "roc_auc": float(roc_auc_score(y[test], model.predict_raw_matrix(x[test]))),
        "n_users": len(y),
        "churn_share": float(y.mean()),
    }


def run_world(preset: str, seed: int, scenario: str, work: Path, trials: int) -> dict[str, Any]:
    """The honest pipeline on one simulated world; returns the figures for the JSON."""
    from churnflow.config import load_config
    from churnflow.data.load import load_events
    from churnflow.evaluation.evaluate import evaluate_model
    from churnflow.evaluation.ground_truth import ground_truth_for
    from churnflow.features import compute_features
    from churnflow.labels import build_labels
    from churnflow.models.training import describe_model, join_features_labels, make_split, train_final
    from churnflow.models.tuning import run_study
    from churnflow.simulate import simulate_to_dir

    cfg = load_config("params.yaml")
    cfg.tune.n_trials = trials or cfg.tune.n_trials
    cfg.evaluate.leak_alarm = False  # record the figures even if a world would trip it (it is reported)
    raw = work / f"{preset}-{seed}-{scenario}"
    times: dict[str, float] = {}
    t = time.perf_counter()
    simulate_to_dir(preset, seed, raw, scenario=scenario, gzip=True, progress=False)
    events = load_events([raw], cfg.data).events
    labels = build_labels(events, cfg.labels).labels
    features = compute_features(events, labels.select("user_id", "cutoff"), cfg.features)
    data = join_features_labels(features, labels)
    split = make_split(data, cfg)
    times["data_s"] = time.perf_counter() - t
    t = time.perf_counter()
    tuned = run_study(data, split, cfg, storage=None, track=False, show_progress=False)
    result = train_final(data, cfg, tuned.best_params, split)
    result.model.meta = describe_model(result, cfg, {})
    times["tune_train_s"] = time.perf_counter() - t
    t = time.perf_counter()
    truth = ground_truth_for(raw, data, split, cfg)
    evaluation = evaluate_model(result.model, data, split, cfg, truth=truth, with_figures=False)
    times["evaluate_s"] = time.perf_counter() - t
    m = evaluation.metrics
    usual = usual_sparkify_setup(events, cfg, seed)
    known, new = m["test"]["known_customers"], m["test"]["new_users"]
    oracle = m.get("oracle", {})
    head = oracle.get("known_customers", {})
    return {
        "world": {"preset": preset, "seed": seed, "scenario": scenario, "events": events.height},
        "known_customers": {k: known.get(k) for k in ("roc_auc", "roc_auc_ci", "n_users", "n_rows", "ece")},
        "known_customers_calibration": {
            "mean_probability": known.get("mean_probability"),
            "positive_rate": known.get("positive_rate"),
        },
        "new_users": {k: new.get(k) for k in ("roc_auc", "roc_auc_ci", "n_users", "n_rows")},
        "oracle": {
            "roc_auc": head.get("roc_auc"),
            "roc_auc_ci": head.get("roc_auc_ci"),
            "model_over_oracle": head.get("model_over_oracle"),
            "model_over_oracle_ci": head.get("model_over_oracle_ci"),
            "goal_ratio": oracle.get("goal_ratio"),
            "goal_met": oracle.get("goal_met"),
            "mc_standard_error_mean": oracle.get("mc_standard_error_mean"),
            "calibration": oracle.get("calibration"),
        },
        "latent_model": m.get("latent_model", {}).get("known_customers"),
        "validation": m.get("validation"),
        "usual_whole_history_setup": usual,
        "overstatement": (usual["roc_auc"] - known["roc_auc"]) if "roc_auc" in known else None,
        "seconds": {k: round(v, 1) for k, v in times.items()},
    }


def main(
    trials: int = typer.Option(0, help="Optuna trials per world (0: the config's tune.n_trials)"),
    out: Path = typer.Option(Path("benchmarks/results/honest_evaluation.json"), help="result JSON"),
    only_default: bool = typer.Option(False, help="run the default world only (quick check)"),
) -> None:
    """Run every world, print the table, write the JSON."""
    work = Path(tempfile.mkdtemp(prefix="bench-honest-"))
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    rows = []
    for preset, seed, scenario in WORLDS[:1] if only_default else WORLDS:
        t0 = time.perf_counter()
        row = run_world(preset, seed, scenario, work, trials)
        row["seconds"]["total_s"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        k, o = row["known_customers"], row["oracle"]
        print(
            f"{preset} seed {seed} {scenario}: known customers AUC {k['roc_auc']:.3f} "
            f"[{k['roc_auc_ci'][0]:.3f}, {k['roc_auc_ci'][1]:.3f}] ({k['n_users']} users), new users "
            f"{row['new_users']['roc_auc']:.3f}; oracle {o['roc_auc']:.3f}, "
            f"ratio {o['model_over_oracle']:.3f} "
            f"[{o['model_over_oracle_ci'][0]:.3f}, {o['model_over_oracle_ci'][1]:.3f}] "
            f"(goal {o['goal_ratio']}: "
            f"{'met' if o['goal_met'] else 'NOT met'}); latent-state model "
            f"{(row['latent_model'] or {}).get('roc_auc', float('nan')):.3f}; ECE {k['ece']:.3f}, mean "
            f"{row['known_customers_calibration']['mean_probability']:.3f} vs rate "
            f"{row['known_customers_calibration']['positive_rate']:.3f}; usual whole-history set-up AUC "
            f"{row['usual_whole_history_setup']['roc_auc']:.3f}"
        )
    write_json(
        out,
        {
            "benchmark": "honest_evaluation",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "load_average_1m_at_end": os.getloadavg()[0],
            "worlds": rows,
        },
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    typer.run(main)
