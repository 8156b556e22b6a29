"""Feature importance: total gain from the booster (|coefficient| for logistic regression) and SHAP values.

SHAP values come from the models themselves, exactly: LightGBM ``pred_contrib``, XGBoost ``pred_contribs``
(TreeSHAP), and for the logistic regression the linear SHAP ``coef × (x − mean) / scale``. Each row's values
sum (with the bias) to the model's raw margin.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from churnflow.models.artifact import ChurnModel


def gain_importance(model: ChurnModel) -> np.ndarray:
    """Per-feature importance aligned with ``model.feature_names`` (gain, or |standardised coef|)."""
    names = model.feature_names
    if model.model_name == "lightgbm":
        return np.asarray(model.native.feature_importance(importance_type="gain"), dtype=np.float64)
    if model.model_name == "xgboost":
        scores = model.native.get_score(importance_type="total_gain")
        # xgboost names unnamed features f0, f1, ...
        return np.array([float(scores.get(f"f{i}", scores.get(n, 0.0))) for i, n in enumerate(names)])
    if model.model_name == "logreg":
        return np.abs(np.asarray(model.native["coef"], dtype=np.float64))
    raise ValueError(f"unknown model {model.model_name!r}")


def shap_values(model: ChurnModel, x: np.ndarray) -> np.ndarray:
    """(n_rows, n_features) SHAP values on the margin scale (bias column dropped)."""
    if model.model_name == "lightgbm":
        contrib = np.asarray(model.native.predict(x, pred_contrib=True))
        return contrib[:, :-1]
    if model.model_name == "xgboost":
        import xgboost as xgb

        contrib = model.native.predict(xgb.DMatrix(x, missing=np.nan), pred_contribs=True)
        return np.asarray(contrib)[:, :-1]
    if model.model_name == "logreg":
        s = model.native
        filled = np.where(np.isnan(x), np.asarray(s["medians"]), x)
        return np.asarray(s["coef"]) * (filled - np.asarray(s["mean"])) / np.asarray(s["scale"])
    raise ValueError(f"unknown model {model.model_name!r}")


def importance_table(model: ChurnModel, x_sample: np.ndarray) -> tuple[pl.DataFrame, np.ndarray]:
    """(table: feature, gain, gain_share, mean_abs_shap — sorted by mean_abs_shap, name; SHAP matrix)."""
    gain = gain_importance(model)
    shap = shap_values(model, x_sample)
    total = gain.sum() or 1.0
    table = pl.DataFrame(
        {
            "feature": model.feature_names,
            "gain": gain,
            "gain_share": gain / total,
            "mean_abs_shap": np.abs(shap).mean(axis=0) if len(shap) else np.zeros(len(gain)),
        }
    ).sort(["mean_abs_shap", "feature"], descending=[True, False])
    return table, shap


def figure_shap_summary(shap: np.ndarray, x: np.ndarray, names: list[str], top: int = 15) -> bytes:
    """SHAP summary (beeswarm) PNG of the ``top`` features by mean |SHAP|, via the shap package."""
    import matplotlib

    matplotlib.use("Agg")
    import io

    import matplotlib.pyplot as plt
    import shap as shap_lib

    plt.figure()
    shap_lib.summary_plot(
        shap, x, feature_names=names, max_display=top, show=False, rng=np.random.default_rng(0)
    )
    fig = plt.gcf()
    fig.suptitle("SHAP summary (test sample)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
