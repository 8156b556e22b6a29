"""Evaluate a fitted :class:`ChurnModel` on the out-of-time test rows: metrics, business curve, plot tables,
figures, importance, leakage audit and classification report — all returned in memory (the stage writes).

Invariant: the same model, data, config and seed give the same metrics, tables and figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sklearn.metrics import classification_report, roc_auc_score

from churnflow.config import Config
from churnflow.evaluation import explain, plots
from churnflow.evaluation.business import business_curve, business_summary
from churnflow.evaluation.leakage import single_feature_aucs
from churnflow.evaluation.metrics import check_binary, classification_metrics
from churnflow.models.artifact import ChurnModel
from churnflow.models.splits import TimeSplit
from churnflow.models.training import Dataset


@dataclass
class Evaluation:
    """Everything the evaluate stage writes."""

    metrics: dict[str, Any]  # reports/metrics.json
    tables: dict[str, pl.DataFrame]  # reports/plots/<name>.csv
    figures: dict[str, bytes] = field(default_factory=dict)  # reports/figures/<name>.png
    importance: pl.DataFrame | None = None
    leakage: pl.DataFrame | None = None
    classification_report: str = ""
    messages: list[str] = field(default_factory=list)


def check_split_matches(model: ChurnModel, split: TimeSplit) -> None:
    """The model's recorded test cutoffs must be this split's (else it was trained on other data)."""
    recorded = model.meta.get("test_cutoffs")
    if recorded is None:
        return
    now = [c.isoformat() if hasattr(c, "isoformat") else str(c) for c in split.test_cutoffs]
    if list(recorded) != now:
        raise ValueError(
            f"model_meta.json test_cutoffs {recorded} differ from the data's test cutoffs {now}: "
            "the model was trained on other data — re-run the train stage"
        )


def evaluate_model(
    model: ChurnModel,
    data: Dataset,
    split: TimeSplit,
    cfg: Config,
    *,
    model_version: str | None = None,
    oracle_p: np.ndarray | None = None,
    with_figures: bool = True,
) -> Evaluation:
    """Score ``split.test`` rows and build the full evaluation (``oracle_p`` aligned with test rows)."""
    ev = cfg.evaluate
    x_test = data.matrix(split.test)
    y = check_binary(data.target(split.test), "test labels")
    p = model.predict_proba_matrix(x_test)
    test = classification_metrics(
        y,
        p,
        model.threshold,
        calibration_bins=ev.calibration_bins,
        bootstrap_samples=ev.bootstrap_samples,
        seed=cfg.seed,
    )
    test["threshold_rule"] = model.meta.get("threshold_choice", {}).get("rule", "unknown")
    curve = business_curve(y, p, ev, n_points=ev.business_points)
    metrics: dict[str, Any] = {
        "test": test,
        "business": business_summary(curve, ev.top_k_share),
        "n_train": int(split.development.sum()),
        "n_test": int(split.test.sum()),
        "model": model.model_name,
        "model_version": model_version,
    }
    messages: list[str] = []
    if oracle_p is not None:
        if len(oracle_p) != len(y):
            raise ValueError(f"oracle probabilities have {len(oracle_p)} rows, test has {len(y)}")
        oracle_auc = float(roc_auc_score(y, oracle_p))
        ratio = test["roc_auc"] / oracle_auc if oracle_auc > 0 else float("nan")
        goal = ratio >= ev.oracle_min_ratio
        metrics["oracle"] = {
            "roc_auc": oracle_auc,
            "ratio": ratio,
            "goal_ratio": ev.oracle_min_ratio,
            "goal_met": goal,
        }
        messages.append(
            f"test ROC-AUC {test['roc_auc']:.4f} vs oracle {oracle_auc:.4f}: ratio {ratio:.3f} "
            f"({'meets' if goal else 'MISSES'} the goal ≥ {ev.oracle_min_ratio:.2f})"
        )
    roc = plots.roc_table(y, p)
    pr = plots.pr_table(y, p)
    cal = plots.calibration_frame(y, p, ev.calibration_bins)
    lift = plots.lift_table(y, p, ev.business_points)
    tables = {
        "roc": roc,
        "pr": pr,
        "calibration": cal,
        "lift": lift,
        "confusion": plots.confusion_table(y, p, model.threshold),
        "business": curve,
    }
    dev_x = data.matrix(split.development)
    leakage = single_feature_aucs(
        dev_x, data.target(split.development), data.feature_names, ev.leakage_auc_threshold
    )
    flagged = leakage.filter(pl.col("flagged"))
    if flagged.height:
        messages.append(
            f"LEAKAGE SUSPECTS (single-feature AUC > {ev.leakage_auc_threshold}): "
            f"{flagged['feature'].to_list()}"
        )
    n_sample = min(ev.shap_sample, len(x_test))
    sample_idx = np.sort(np.random.default_rng(cfg.seed).choice(len(x_test), n_sample, replace=False))
    importance, shap = explain.importance_table(model, x_test[sample_idx])
    report = classification_report(
        y, (p >= model.threshold).astype(int), target_names=["stay", "churn"], digits=3
    )
    figures: dict[str, bytes] = {}
    if with_figures:
        oracle_auc_fig = metrics.get("oracle", {}).get("roc_auc")
        figures = {
            "roc": plots.figure_roc(roc, test["roc_auc"], oracle_auc_fig),
            "pr": plots.figure_pr(pr, test["pr_auc"], test["positive_rate"]),
            "calibration": plots.figure_calibration(cal, test["ece"]),
            "lift": plots.figure_lift(lift),
            "business": plots.figure_business(curve, ev.top_k_share),
            "confusion": plots.figure_confusion(y, p, model.threshold),
            "importance_gain": plots.figure_bars(
                importance.sort(["gain", "feature"], descending=[True, False])["feature"].head(20).to_list(),
                importance.sort(["gain", "feature"], descending=[True, False])["gain"].head(20).to_list(),
                "Feature importance (total gain)",
                "gain",
            ),
            "shap_summary": explain.figure_shap_summary(shap, x_test[sample_idx], data.feature_names),
            "leakage": plots.figure_bars(
                leakage["feature"].head(20).to_list(),
                leakage["auc"].head(20).to_list(),
                "Single-feature ROC-AUC (training rows)",
                "AUC",
            ),
        }
    tables["importance"] = importance
    tables["leakage"] = leakage.select("feature", "auc", "direction", "missing_share", "flagged")
    return Evaluation(metrics, tables, figures, importance, leakage, report, messages)


def oracle_for_test(raw_dir: Path, data: Dataset, split: TimeSplit, horizon_days: int) -> np.ndarray | None:
    """Oracle churn probabilities for the test rows from the simulator's ground truth, or None when the raw
    folder has no ``_truth`` sidecar (real data) or the simulator package is not available."""
    try:
        from churnflow.simulate import load_ground_truth, oracle_probabilities
    except ImportError:
        return None
    truth = load_ground_truth(raw_dir)
    if truth is None:
        return None
    keys = data.frame.filter(pl.Series(split.test)).select("user_id", "cutoff")
    return np.asarray(oracle_probabilities(truth, keys, horizon_days), dtype=np.float64)
