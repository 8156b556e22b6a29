"""Decisions taken with the model, all chosen on validation predictions (never on the test rows).

* the decision **threshold** by rule: ``max_f1``, ``target_precision`` or ``top_k`` (a share to target);
* the **business operating point**: the targeted share with the best expected net value on validation,
  and the break-even probability ``cost / (success_rate × value)`` above which contacting a user pays
  (meaningful because the probabilities are calibrated).

Both are shipped in ``model_meta.json``; the evaluation reports what they give on test.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl

from churnflow.config import EvaluateConfig
from churnflow.stats import ranked

RULES: tuple[str, ...] = ("max_f1", "target_precision", "top_k")


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen threshold, the rule and a sentence saying how it was obtained."""

    threshold: float
    rule: str
    how: str

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for ``model_meta.json``."""
        return asdict(self)


def _pr_points(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall at each distinct score used as threshold (descending thresholds)."""
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    tp = np.cumsum(ys)
    fp = np.cumsum(1 - ys)
    last = np.r_[np.diff(ps) != 0, True]  # the last index of each distinct score
    tp, fp, thr = tp[last], fp[last], ps[last]
    precision = tp / (tp + fp)
    recall = tp / max(int(ys.sum()), 1)
    return precision, recall, thr


def flagged_note(p: np.ndarray, threshold: float) -> str:
    """Plain words for how many validation users a threshold flags (warns when it flags nearly all)."""
    share = float((p >= threshold).mean())
    warn = (
        " — WARNING: nearly everyone is flagged; the model barely ranks on validation" if share >= 0.9 else ""
    )
    return f"; flags {share:.0%} of validation users{warn}"


def choose_threshold(
    y: np.ndarray, p: np.ndarray, rule: str, *, target_precision: float = 0.6, top_k_share: float = 0.25
) -> ThresholdChoice:
    """Pick a threshold on scores ``p`` for labels ``y`` by ``rule``; predictions are ``p >= threshold``."""
    y = np.asarray(y).astype(np.int64)
    p = np.asarray(p, dtype=np.float64)
    if rule not in RULES:
        raise ValueError(f"threshold rule must be one of {RULES}, got {rule!r}")
    if len(p) == 0:
        raise ValueError("cannot choose a threshold on an empty validation set")
    choice = _choose(y, p, rule, target_precision, top_k_share)
    return ThresholdChoice(choice.threshold, choice.rule, choice.how + flagged_note(p, choice.threshold))


def _choose(
    y: np.ndarray, p: np.ndarray, rule: str, target_precision: float, top_k_share: float
) -> ThresholdChoice:
    if rule == "top_k":
        if not 0.0 < top_k_share <= 1.0:
            raise ValueError(f"top_k_share must be in (0, 1], got {top_k_share}")
        k = max(1, int(np.ceil(top_k_share * len(p))))
        thr = float(np.sort(p)[::-1][k - 1])
        return ThresholdChoice(
            thr, rule, f"score of the {k}-th highest of {len(p)} validation users (top {top_k_share:.0%})"
        )
    precision, recall, thr = _pr_points(y, p)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    if rule == "target_precision":
        ok = np.flatnonzero(precision >= target_precision)
        if len(ok):
            best = ok[np.argmax(recall[ok])]
            return ThresholdChoice(
                float(thr[best]),
                rule,
                f"highest recall ({recall[best]:.3f}) with validation precision ≥ {target_precision:.2f}",
            )
        best = int(np.argmax(f1))
        return ThresholdChoice(
            float(thr[best]),
            "max_f1",
            f"no threshold reaches validation precision {target_precision:.2f}: "
            f"fell back to max F1 ({f1[best]:.3f})",
        )
    best = int(np.argmax(f1))
    return ThresholdChoice(float(thr[best]), rule, f"maximises validation F1 ({f1[best]:.3f})")


def business_curve(y: np.ndarray, p: np.ndarray, cfg: EvaluateConfig, n_points: int = 100) -> pl.DataFrame:
    """Expected net value of targeting the top k/n_points of scores, one row per k.

    For a targeted set of n users holding c churners: value = c × success_rate × value_per_retained_user,
    cost = n × intervention_cost, net = value − cost, ROI = net / cost. Columns: share_targeted,
    n_targeted, churners_reached, net_value, roi.
    """
    ys = ranked(np.asarray(y).astype(np.int64), p)
    n = len(ys)
    cum = np.r_[0, np.cumsum(ys)]
    shares = np.arange(1, n_points + 1) / n_points
    n_targeted = np.maximum(1, np.ceil(shares * n).astype(np.int64))
    reached = cum[n_targeted]
    value = reached * cfg.intervention_success_rate * cfg.value_per_retained_user
    cost = n_targeted * cfg.intervention_cost
    net = value - cost
    roi = np.where(cost > 0, net / np.where(cost > 0, cost, 1.0), 0.0)
    return pl.DataFrame(
        {
            "share_targeted": shares,
            "n_targeted": n_targeted,
            "churners_reached": reached.astype(np.int64),
            "net_value": net.astype(np.float64),
            "roi": roi.astype(np.float64),
        }
    )


@dataclass(frozen=True)
class OperatingPoint:
    """The business operating point chosen on validation (``model_meta.json`` → ``operating_point``)."""

    best_share: float  # targeted share with the highest validation net value
    best_share_threshold: float  # the validation score at that share (the rule a campaign would apply)
    validation_net_value: float
    break_even_probability: float  # contact a user when calibrated P(churn) >= this

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for ``model_meta.json``."""
        return asdict(self)


def choose_operating_point(y: np.ndarray, p: np.ndarray, cfg: EvaluateConfig) -> OperatingPoint:
    """Best targeted share and its score threshold on validation, plus the break-even probability."""
    curve = business_curve(y, p, cfg, n_points=cfg.business_points)
    best = curve.sort(["net_value", "share_targeted"], descending=[True, False]).row(0, named=True)
    k = int(best["n_targeted"])
    return OperatingPoint(
        best_share=float(best["share_targeted"]),
        best_share_threshold=float(np.sort(np.asarray(p, dtype=np.float64))[::-1][k - 1]),
        validation_net_value=float(best["net_value"]),
        break_even_probability=cfg.intervention_cost
        / (cfg.intervention_success_rate * cfg.value_per_retained_user),
    )
