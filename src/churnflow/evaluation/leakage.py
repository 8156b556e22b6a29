"""Leakage audit: the ROC-AUC of every single feature on its own (direction-free: max(AUC, 1 − AUC)).

A feature that alone separates churners almost perfectly (above ``leakage_auc_threshold``) usually encodes
the label (e.g. a cancellation page counted after the cutoff) and is flagged for a human to look at.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from churnflow.stats import weighted_roc_auc


def single_feature_aucs(x: np.ndarray, y: np.ndarray, names: list[str], threshold: float) -> pl.DataFrame:
    """One row per feature: feature, auc (direction-free), direction (+1 higher = churn), missing_share,
    flagged (auc > threshold); sorted by auc descending then name. NaNs get the column median."""
    y = np.asarray(y).astype(np.int64)
    rows = []
    for j, name in enumerate(names):
        col = x[:, j]
        missing = np.isnan(col)
        if missing.all() or np.nanmax(col) == np.nanmin(col):
            auc, direction = 0.5, 0
        else:
            filled = np.where(missing, np.nanmedian(col), col)
            raw = float(weighted_roc_auc(y, filled)[0])
            auc, direction = (raw, 1) if raw >= 0.5 else (1.0 - raw, -1)
        rows.append(
            {
                "feature": name,
                "auc": auc,
                "direction": direction,
                "missing_share": float(missing.mean()),
                "flagged": auc > threshold,
            }
        )
    return pl.DataFrame(rows).sort(["auc", "feature"], descending=[True, False])
