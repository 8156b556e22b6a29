"""Signed per-feature contributions to a churn model's log-odds, and the top reasons of one prediction.

:func:`feature_contributions` returns, for each row, one column per feature plus a last bias column, in
log-odds of the model's raw margin, from the model's family (``churnflow.models.families``): TreeSHAP for
LightGBM and XGBoost, ``coef × standardised value`` (median-imputed, as the model sees it) for logreg. It is
the one explanation function: the evaluation's SHAP figures and the service's top reasons both use it.
Invariant: each row sums to the model's pre-calibration log-odds ``margin + logit_offset``; the calibrated
probability is a monotone function of that sum, so a positive contribution always pushes churn risk up.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from churnflow.models.artifact import ChurnModel
from churnflow.models.families import get_family


def feature_contributions(model: ChurnModel, matrix: np.ndarray) -> np.ndarray:
    """``(n, n_features + 1)`` float64 contributions (last column: bias incl. ``logit_offset``).

    ``matrix``: float64, columns = ``model.feature_names`` (NaN = missing).
    """
    x = np.ascontiguousarray(matrix, dtype=np.float64)
    n_features = len(model.feature_names)
    if x.ndim != 2 or x.shape[1] != n_features:
        raise ValueError(f"matrix must have shape (n, {n_features}), got {x.shape}")
    if x.shape[0] == 0:
        return np.zeros((0, n_features + 1), dtype=np.float64)
    out = get_family(model.model_name).contributions(model.native, x)
    if out.shape != (x.shape[0], n_features + 1):
        raise ValueError(f"contributions have shape {out.shape}, expected {(x.shape[0], n_features + 1)}")
    out[:, -1] += float(model.logit_offset)
    return out


def top_reasons(
    contributions: np.ndarray, values: np.ndarray, feature_names: list[str] | tuple[str, ...], k: int
) -> list[dict[str, Any]]:
    """The ``k`` largest non-zero ``|contribution|`` of ONE row (bias excluded), largest first.

    ``contributions``: that row (``n_features + 1``); ``values``: its feature values. Ties break by feature
    name so the answer is deterministic. Each reason: ``feature``, ``value`` (None for NaN),
    ``contribution`` (log-odds) and ``direction`` (``raises`` | ``lowers`` the churn risk).
    """
    per_feature = np.asarray(contributions, dtype=np.float64)[: len(feature_names)]
    order = sorted(
        (i for i in range(len(feature_names)) if per_feature[i] != 0.0 and np.isfinite(per_feature[i])),
        key=lambda i: (-abs(per_feature[i]), feature_names[i]),
    )
    reasons = []
    for i in order[: max(0, k)]:
        value = float(values[i])
        reasons.append(
            {
                "feature": feature_names[i],
                "value": value if np.isfinite(value) else None,
                "contribution": float(per_feature[i]),
                "direction": "raises" if per_feature[i] > 0 else "lowers",
            }
        )
    return reasons
