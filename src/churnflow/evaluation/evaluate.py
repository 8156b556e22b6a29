"""Evaluate a fitted :class:`ChurnModel` on the purged, out-of-time test rows (in memory; the stage writes).

Two honest views of the test rows (``churnflow.models.splits``): **known customers** (users the model was
trained on, scored at later cutoffs: the deployment case, the headline) and **new users** (never seen in
training). Every interval resamples users. On simulated data the simulator's ground truth adds:

* the **oracle** ceiling P(label | full latent state at the cutoff) (Monte-Carlo, ``churnflow.simulate``):
  its AUC, the model/oracle ratio with a paired user-bootstrap interval, and its calibration per cutoff;
* the **latent-state model**: the same model family given the true latent state as extra features — how
  much of the gap to the oracle lies in the features;
* the **leak alarm**: a model that beats the oracle beyond the paired interval is a bug, not a result
  (:class:`LeakAlarm`).

Nothing is chosen here: the threshold, calibrator and business operating point come from validation
(``model_meta.json``) and are only reported on test. Invariant: same model, data, config and seed → same
metrics, tables and figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from sklearn.metrics import classification_report

from churnflow.config import Config
from churnflow.evaluation import explain, plots
from churnflow.evaluation.business import business_curve, business_summary
from churnflow.evaluation.leakage import single_feature_aucs
from churnflow.evaluation.metrics import classification_metrics, paired_comparison, user_bootstrap_weights
from churnflow.models.artifact import ChurnModel
from churnflow.models.factory import fit_model
from churnflow.models.splits import TimeSplit
from churnflow.models.training import Dataset
from churnflow.stats import percentile_interval, weighted_roc_auc

HEADLINE_VIEW = "known_customers"
VIEW_TITLES = {"known_customers": "known customers", "new_users": "new users", "all": "all test rows"}
LEAK_CAUSES = (
    "training labels read events after the first test cutoff (check `known_at` and the purge in "
    "models/splits.py)",
    "a feature reads events at or after its cutoff (run the leakage property tests in "
    "tests/code/test_features_leakage.py)",
    "test users' future behaviour reached the training rows through a user-level or random split",
    "the oracle was computed with another churn definition than the labels (labels config mismatch)",
)


class LeakAlarm(RuntimeError):
    """The model beats the simulator's ceiling beyond the paired bootstrap interval: a leak, not a result."""


@dataclass
class GroundTruth:
    """What the simulator knows about the test (and development) rows; absent for real exports.

    ``oracle_p``/``oracle_se`` are aligned with the test rows (NaN where the oracle budget left a row out);
    ``latent_dev``/``latent_test`` are the true latent state at each development/test row's cutoff.
    """

    oracle_p: np.ndarray
    oracle_se: np.ndarray
    n_draws: int
    coverage: str
    latent_names: list[str] = field(default_factory=list)
    latent_dev: np.ndarray | None = None
    latent_test: np.ndarray | None = None


@dataclass
class Evaluation:
    """Everything the evaluate stage writes (``metrics`` → reports/metrics.json, deterministic)."""

    metrics: dict[str, Any]
    tables: dict[str, pl.DataFrame]  # reports/plots/<name>.csv
    figures: dict[str, bytes] = field(default_factory=dict)  # reports/figures/<name>.png
    importance: pl.DataFrame | None = None
    leakage: pl.DataFrame | None = None
    classification_report: str = ""
    messages: list[str] = field(default_factory=list)
    test_scores: np.ndarray | None = None  # calibrated test probabilities (for the champion comparison)
    bootstrap_weights: dict[str, np.ndarray] = field(default_factory=dict)  # per view, (B, rows)


def check_split_matches(model: ChurnModel, split: TimeSplit) -> None:
    """The model's recorded test cutoffs must be this split's (else it was trained on other data)."""
    recorded = model.meta.get("test_cutoffs")
    if recorded is None:
        return
    now = [c.isoformat() for c in split.test_cutoffs]
    if list(recorded) != now:
        raise ValueError(
            f"model_meta.json test_cutoffs {recorded} differ from the data's test cutoffs {now}: "
            "the model was trained on other data — re-run the train stage"
        )


def _view_block(
    y: np.ndarray, p: np.ndarray, users: np.ndarray, threshold: float, weights: np.ndarray, bins: int
) -> dict[str, Any]:
    if len(np.unique(y)) < 2:
        return {"n_rows": len(y), "n_users": len(np.unique(users)), "note": "fewer than 2 classes"}
    return classification_metrics(y, p, threshold, users=users, weights=weights, calibration_bins=bins)


def _oracle_calibration(
    cutoffs: np.ndarray, y: np.ndarray, p: np.ndarray, se: np.ndarray
) -> list[dict[str, Any]]:
    """Per cutoff: mean oracle probability vs realised label rate, and their difference in standard errors
    (label sampling error sqrt(Σ p(1 − p)) / n combined with the Monte-Carlo error sqrt(Σ se²) / n)."""
    out = []
    for cutoff in np.unique(cutoffs):
        m = cutoffs == cutoff
        n = int(m.sum())
        mean_p, rate = float(p[m].mean()), float(y[m].mean())
        err = float(np.sqrt(np.sum(p[m] * (1 - p[m])) + np.sum(se[m] ** 2)) / n)
        z = (rate - mean_p) / err if err > 0 else 0.0
        out.append(
            {
                "cutoff": str(np.datetime_as_string(cutoff, unit="s")) + "Z",
                "n_rows": n,
                "mean_oracle": mean_p,
                "label_rate": rate,
                "standard_error": err,
                "z": float(z),
                "within_error": bool(abs(z) <= 3.0),
            }
        )
    return out


def evaluate_model(
    model: ChurnModel,
    data: Dataset,
    split: TimeSplit,
    cfg: Config,
    *,
    truth: GroundTruth | None = None,
    with_figures: bool = True,
) -> Evaluation:
    """Score the test rows and build the evaluation (views, oracle, latent model, business, plots).

    Raises :class:`LeakAlarm` (after computing everything, with the figures in its message) when
    ``evaluate.leak_alarm`` is on and the model beats the oracle beyond the paired interval in any view.
    """
    ev = cfg.evaluate
    frame = data.frame.filter(pl.Series(split.test))
    x_test = data.matrix(split.test)
    y = data.target(split.test)
    users = frame.get_column("user_id").to_numpy()
    cutoffs = frame.get_column("cutoff").cast(pl.Datetime("ms")).to_numpy()
    p = model.predict_proba_matrix(x_test)
    in_view = {name: mask[split.test] for name, mask in split.views().items()}
    weights = {
        name: user_bootstrap_weights(users[m], ev.bootstrap_samples, cfg.seed) for name, m in in_view.items()
    }
    test = {
        name: _view_block(y[m], p[m], users[m], model.threshold, weights[name], ev.calibration_bins)
        for name, m in in_view.items()
    }
    metrics: dict[str, Any] = {"model": model.model_name, "test": test}
    messages: list[str] = []
    summary_rows: list[tuple[str, str, float, list[float]]] = []
    for name, block in test.items():
        if "roc_auc" in block:
            summary_rows.append((name, "model", block["roc_auc"], block["roc_auc_ci"]))
    alarms: list[str] = []
    oracle_cal = None
    if truth is not None:
        oracle, alarms, oracle_rows = _oracle_block(y, p, users, cutoffs, in_view, truth, cfg)
        metrics["oracle"] = oracle
        summary_rows += oracle_rows
        head = oracle.get(HEADLINE_VIEW, {})
        if "model_over_oracle" in head:
            lo, hi = head["model_over_oracle_ci"]
            messages.append(
                f"known customers: model/oracle AUC {head['model_over_oracle']:.3f} [{lo:.3f}, {hi:.3f}] "
                f"({'meets' if oracle['goal_met'] else 'MISSES'} the goal ≥ {ev.oracle_goal_ratio:.2f}); "
                f"oracle AUC {head['roc_auc']:.3f}, {truth.coverage}"
            )
        has = np.isfinite(truth.oracle_p)
        oracle_cal = plots.calibration_frame(y[has], truth.oracle_p[has], ev.calibration_bins)
        if ev.latent_model and truth.latent_dev is not None and truth.latent_test is not None:
            latent, latent_rows = _latent_block(model, data, split, truth, y, users, in_view, weights, cfg)
            metrics["latent_model"] = latent
            summary_rows += latent_rows
    metrics["business"] = _business_block(y[in_view[HEADLINE_VIEW]], p[in_view[HEADLINE_VIEW]], model, cfg)
    metrics["validation"] = model.meta.get("validation_metrics", {})
    metrics["split"] = split.describe()
    metrics["calibration"] = {
        "method": model.calibrator.method,
        "ece": test[HEADLINE_VIEW].get("ece"),
        "mean_probability": test[HEADLINE_VIEW].get("mean_probability"),
        "positive_rate": test[HEADLINE_VIEW].get("positive_rate"),
    }
    head = test[HEADLINE_VIEW]
    if "roc_auc" in head:
        rel = abs(head["mean_probability"] - head["positive_rate"]) / max(head["positive_rate"], 1e-12)
        metrics["calibration"]["mean_vs_rate_relative_error"] = float(rel)
        messages.insert(
            0,
            f"known customers: test ROC-AUC {head['roc_auc']:.3f} [{head['roc_auc_ci'][0]:.3f}, "
            f"{head['roc_auc_ci'][1]:.3f}] on {head['n_users']:,} users / {head['n_rows']:,} rows; "
            f"ECE {head['ece']:.3f}, mean predicted {head['mean_probability']:.3f} vs churn rate "
            f"{head['positive_rate']:.3f}",
        )
    nu = test["new_users"]
    if "roc_auc" in nu:
        messages.insert(
            1,
            f"new users: test ROC-AUC {nu['roc_auc']:.3f} "
            f"[{nu['roc_auc_ci'][0]:.3f}, {nu['roc_auc_ci'][1]:.3f}] "
            f"on {nu['n_users']:,} users",
        )
    hv = in_view[HEADLINE_VIEW]
    y_h, p_h, x_h = y[hv], p[hv], x_test[hv]
    curve = business_curve(y_h, p_h, ev, n_points=ev.business_points)
    roc, pr = plots.roc_table(y_h, p_h), plots.pr_table(y_h, p_h)
    cal = plots.calibration_frame(y_h, p_h, ev.calibration_bins)
    lift = plots.lift_table(y_h, p_h, ev.business_points)
    tables = {
        "roc": roc,
        "pr": pr,
        "calibration": cal,
        "lift": lift,
        "confusion": plots.confusion_table(y_h, p_h, model.threshold),
        "business": curve,
    }
    leakage = single_feature_aucs(
        data.matrix(split.development),
        data.target(split.development),
        data.feature_names,
        ev.leakage_auc_threshold,
    )
    flagged = leakage.filter(pl.col("flagged"))
    if flagged.height:
        messages.append(
            f"LEAKAGE SUSPECTS (single-feature AUC > {ev.leakage_auc_threshold}): "
            f"{flagged['feature'].to_list()}"
        )
    n_sample = min(ev.shap_sample, len(x_h))
    sample_idx = np.sort(np.random.default_rng(cfg.seed).choice(len(x_h), n_sample, replace=False))
    importance, shap = explain.importance_table(model, x_h[sample_idx])
    metrics["budgets"] = {  # where a stage sampled (0 = no budget): stated, configurable, seeded
        "tune_max_rows": cfg.tune.max_rows,
        "oracle_max_rows": ev.oracle_max_rows,
        "oracle_rows": None if truth is None else int(np.isfinite(truth.oracle_p).sum()),
        "test_rows": len(y),
        "bootstrap_samples": ev.bootstrap_samples,
        "shap_sample": ev.shap_sample,
        "shap_rows": int(n_sample),
    }
    b = metrics["budgets"]
    messages.append(
        f"budgets: SHAP on {n_sample:,} of {len(x_h):,} known-customer test rows (evaluate.shap_sample="
        f"{ev.shap_sample}), {ev.bootstrap_samples} user-bootstrap samples, oracle on "
        + ("no rows (no ground truth)" if b["oracle_rows"] is None else f"{b['oracle_rows']:,} of {len(y):,}")
        + f" test rows (evaluate.oracle_max_rows={ev.oracle_max_rows}), tuning on "
        + (
            "every tuning-train row"
            if cfg.tune.max_rows == 0
            else f"at most tune.max_rows={cfg.tune.max_rows:,}"
        )
    )
    report = classification_report(
        y_h, (p_h >= model.threshold).astype(int), target_names=["stay", "churn"], digits=3, zero_division=0
    )
    figures: dict[str, bytes] = {}
    if with_figures:
        oracle_auc = metrics.get("oracle", {}).get(HEADLINE_VIEW, {}).get("roc_auc")
        by_shap = importance.sort(["mean_abs_shap", "feature"], descending=[True, False]).head(20)
        figures = {
            "views": plots.figure_views(summary_rows),
            "roc": plots.figure_roc(roc, head.get("roc_auc", float("nan")), oracle_auc),
            "pr": plots.figure_pr(pr, head.get("pr_auc", float("nan")), float(y_h.mean())),
            "calibration": plots.figure_calibration(cal, head.get("ece", float("nan")), oracle_cal),
            "lift": plots.figure_lift(lift),
            "business": plots.figure_business(curve, ev.top_k_share),
            "confusion": plots.figure_confusion(y_h, p_h, model.threshold),
            "importance_shap": plots.figure_bars(
                by_shap["feature"].to_list(),
                by_shap["mean_abs_shap"].to_list(),
                "Mean |SHAP| (test)",
                "log-odds",
            ),
            "shap_summary": explain.figure_shap_summary(shap, x_h[sample_idx], data.feature_names),
            "leakage": plots.figure_bars(
                leakage["feature"].head(20).to_list(),
                leakage["auc"].head(20).to_list(),
                "Single-feature ROC-AUC (development rows)",
                "AUC",
            ),
        }
    tables["importance"] = importance
    tables["leakage"] = leakage.select("feature", "auc", "direction", "missing_share", "flagged")
    result = Evaluation(metrics, tables, figures, importance, leakage, report, messages, p, weights)
    if alarms and ev.leak_alarm:
        raise LeakAlarm(
            "the model beats the simulator's oracle ceiling beyond the paired bootstrap interval — a leak, "
            "not a result:\n  " + "\n  ".join(alarms) + "\nLikely causes:\n  - " + "\n  - ".join(LEAK_CAUSES)
        )
    return result


def _oracle_block(
    y: np.ndarray,
    p: np.ndarray,
    users: np.ndarray,
    cutoffs: np.ndarray,
    in_view: dict[str, np.ndarray],
    truth: GroundTruth,
    cfg: Config,
) -> tuple[dict[str, Any], list[str], list[tuple[str, str, float, list[float]]]]:
    """Oracle AUC per view, model/oracle ratio and difference (paired), calibration per cutoff, alarms."""
    ev = cfg.evaluate
    has = np.isfinite(truth.oracle_p)
    block: dict[str, Any] = {
        "draws": truth.n_draws,
        "coverage": truth.coverage,
        "n_rows": int(has.sum()),
        "mc_standard_error_mean": float(np.mean(truth.oracle_se[has])) if has.any() else float("nan"),
        "calibration": _oracle_calibration(cutoffs[has], y[has], truth.oracle_p[has], truth.oracle_se[has]),
        "goal_ratio": ev.oracle_goal_ratio,
    }
    alarms: list[str] = []
    rows: list[tuple[str, str, float, list[float]]] = []
    for name, m in in_view.items():
        sel = m & has
        if sel.sum() == 0 or len(np.unique(y[sel])) < 2:
            block[name] = {"n_rows": int(sel.sum()), "note": "fewer than 2 classes"}
            continue
        w = user_bootstrap_weights(users[sel], ev.bootstrap_samples, cfg.seed)
        cmp = paired_comparison(y[sel], p[sel], truth.oracle_p[sel], w)
        oracle_auc_ci = percentile_interval(weighted_roc_auc(y[sel], truth.oracle_p[sel], w))
        block[name] = {
            "roc_auc": cmp["auc_b"],
            "roc_auc_ci": oracle_auc_ci,
            "model_roc_auc": cmp["auc_a"],
            "model_over_oracle": cmp["ratio"],
            "model_over_oracle_ci": cmp["ratio_ci"],
            "model_minus_oracle": cmp["difference"],
            "model_minus_oracle_ci": cmp["difference_ci"],
            "n_rows": int(sel.sum()),
        }
        rows.append((name, "oracle", cmp["auc_b"], oracle_auc_ci))
        if cmp["difference_ci"][0] > 0:
            alarms.append(
                f"{VIEW_TITLES[name]}: model AUC {cmp['auc_a']:.3f} vs oracle {cmp['auc_b']:.3f}, difference "
                f"{cmp['difference']:+.3f} [{cmp['difference_ci'][0]:+.3f}, {cmp['difference_ci'][1]:+.3f}]"
            )
    head = block.get(HEADLINE_VIEW, {})
    block["goal_met"] = bool(head.get("model_over_oracle", 0.0) >= ev.oracle_goal_ratio)
    return block, alarms, rows


def _latent_block(
    model: ChurnModel,
    data: Dataset,
    split: TimeSplit,
    truth: GroundTruth,
    y: np.ndarray,
    users: np.ndarray,
    in_view: dict[str, np.ndarray],
    weights: dict[str, np.ndarray],
    cfg: Config,
) -> tuple[dict[str, Any], list[tuple[str, str, float, list[float]]]]:
    """The same model family and parameters, fitted on development rows with the latent state added."""
    assert truth.latent_dev is not None and truth.latent_test is not None
    x_dev = np.hstack([data.matrix(split.development), truth.latent_dev])
    x_test = np.hstack([data.matrix(split.test), truth.latent_test])
    names = [*data.feature_names, *truth.latent_names]
    fitted = fit_model(
        model.model_name,
        model.meta.get("params", {}),
        x_dev,
        data.target(split.development),
        feature_names=names,
        seed=cfg.seed,
        class_weight=cfg.train.class_weight,
    )
    q = fitted.predict_raw_matrix(x_test)
    block: dict[str, Any] = {"features": truth.latent_names}
    rows = []
    for name, m in in_view.items():
        if len(np.unique(y[m])) < 2:
            continue
        auc = float(weighted_roc_auc(y[m], q[m])[0])
        ci = percentile_interval(weighted_roc_auc(y[m], q[m], weights[name]))
        block[name] = {"roc_auc": auc, "roc_auc_ci": ci}
        rows.append((name, "latent-state model", auc, ci))
    return block, rows


def _business_block(y: np.ndarray, p: np.ndarray, model: ChurnModel, cfg: Config) -> dict[str, Any]:
    """Business figures on the known-customer test rows, at the operating points chosen on validation."""
    ev = cfg.evaluate
    curve = business_curve(y, p, ev, n_points=ev.business_points)
    out = business_summary(curve, ev.top_k_share)
    op = model.meta.get("operating_point")
    if op:
        share = float(op["best_share"])
        at = curve.filter((pl.col("share_targeted") - share).abs() < 0.5 / ev.business_points)
        targeted = p >= float(op["break_even_probability"])
        reached = int(y[targeted].sum())
        net = reached * ev.intervention_success_rate * ev.value_per_retained_user - targeted.sum() * (
            ev.intervention_cost
        )
        out.update(
            {
                "validation_best_share": share,
                "net_value_at_validation_share": float(at["net_value"][0]) if at.height else float("nan"),
                "break_even_probability": float(op["break_even_probability"]),
                "share_above_break_even": float(targeted.mean()),
                "net_value_above_break_even": float(net),
            }
        )
    return out
