"""Signed per-feature contributions to a churn model's log-odds, and the top reasons of one prediction.

:func:`feature_contributions` returns, for each row, one column per feature plus a last bias column, in
log-odds of the model's raw margin: LightGBM ``pred_contrib=True`` and XGBoost ``pred_contribs=True``
(TreeSHAP), logistic regression ``coef × standardised value`` (median-imputed, as the model sees it).
Invariant: each row sums to the model's pre-calibration log-odds ``margin + logit_offset``; the calibrated
probability is a monotone function of that sum, so a positive contribution always pushes churn risk up.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from churnflow.models.artifact import ChurnModel


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
    if model.model_name == "lightgbm":
        out = np.asarray(model.native.predict(x, pred_contrib=True), dtype=np.float64)
    elif model.model_name == "xgboost":
        import xgboost as xgb

        out = np.asarray(model.native.predict(xgb.DMatrix(x, missing=np.nan), pred_contribs=True))
        out = out.astype(np.float64)
    elif model.model_name == "logreg":
        out = _logreg_contributions(model.native, x)
    else:
        raise ValueError(f"no contributions for model {model.model_name!r} (lightgbm | xgboost | logreg)")
    if out.shape != (x.shape[0], n_features + 1):
        raise ValueError(f"contributions have shape {out.shape}, expected {(x.shape[0], n_features + 1)}")
    out[:, -1] += float(model.logit_offset)
    return out


def _logreg_contributions(state: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """``coef_j × (x_j − mean_j) / scale_j`` per feature (NaN → median first); bias = intercept."""
    medians = np.asarray(state["medians"], dtype=np.float64)
    mean = np.asarray(state["mean"], dtype=np.float64)
    scale = np.asarray(state["scale"], dtype=np.float64)
    coef = np.asarray(state["coef"], dtype=np.float64)
    filled = np.where(np.isnan(x), medians, x)
    contrib = (filled - mean) / scale * coef
    bias = np.full((x.shape[0], 1), float(state["intercept"]))
    return np.hstack([contrib, bias])


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
