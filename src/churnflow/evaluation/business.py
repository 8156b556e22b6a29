"""Business view: expected net value and ROI of targeting the top k% of churn risk, as a curve over k.

For a targeted set of n users holding c actual churners: value = c × success_rate × value_per_retained_user,
cost = n × intervention_cost, net = value − cost, ROI = net / cost.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from churnflow.config import EvaluateConfig
from churnflow.evaluation.metrics import ranked


def business_curve(y: np.ndarray, p: np.ndarray, cfg: EvaluateConfig, n_points: int = 100) -> pl.DataFrame:
    """One row per targeted share k/n_points: share_targeted, n_targeted, churners_reached, net_value, roi."""
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


def business_summary(curve: pl.DataFrame, top_k_share: float) -> dict[str, Any]:
    """The ``business`` block of metrics.json: net value / ROI at top 25% and at ``top_k_share``, best k."""

    def at(share: float) -> dict[str, float]:
        row = curve.filter(
            (pl.col("share_targeted") - share).abs() == (pl.col("share_targeted") - share).abs().min()
        )
        return {"net_value": float(row["net_value"][0]), "roi": float(row["roi"][0])}

    best = curve.sort(["net_value", "share_targeted"], descending=[True, False]).row(0, named=True)
    top25 = at(0.25)
    topk = at(top_k_share)
    return {
        "net_value_top_25": top25["net_value"],
        "roi_top_25": top25["roi"],
        "top_k_share": float(top_k_share),
        "net_value_top_k": topk["net_value"],
        "roi_top_k": topk["roi"],
        "best_share": float(best["share_targeted"]),
        "best_net_value": float(best["net_value"]),
    }
