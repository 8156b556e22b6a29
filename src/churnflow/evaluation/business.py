"""Business view: expected net value and ROI of targeting the top k% of churn risk, as a curve over k.

For a targeted set of n users holding c actual churners: value = c × success_rate × value_per_retained_user,
cost = n × intervention_cost, net = value − cost, ROI = net / cost.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from churnflow.models.decision import business_curve

__all__ = ["business_curve", "business_summary"]


def business_summary(curve: pl.DataFrame, top_k_share: float) -> dict[str, Any]:
    """The fixed-share part of the ``business`` block: net value / ROI at the top 25% and at the
    configured ``top_k_share`` (both set before seeing test; the best share is chosen on validation)."""

    def at(share: float) -> dict[str, float]:
        row = curve.filter(
            (pl.col("share_targeted") - share).abs() == (pl.col("share_targeted") - share).abs().min()
        )
        return {"net_value": float(row["net_value"][0]), "roi": float(row["roi"][0])}

    top25 = at(0.25)
    topk = at(top_k_share)
    return {
        "net_value_top_25": top25["net_value"],
        "roi_top_25": top25["roi"],
        "top_k_share": float(top_k_share),
        "net_value_top_k": topk["net_value"],
        "roi_top_k": topk["roi"],
    }
