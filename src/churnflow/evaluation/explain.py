"""Feature importance: total gain from the booster (|coefficient| for logistic regression) and SHAP values.

SHAP values are :func:`churnflow.models.contributions.feature_contributions` (TreeSHAP for the boosted
trees, the linear SHAP ``coef × (x − mean) / scale`` for the logistic regression): each row's values sum,
with the bias, to the model's log-odds. Importance is the family's total gain (|coefficient| for logreg).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from churnflow.models.artifact import ChurnModel
from churnflow.models.contributions import feature_contributions
from churnflow.models.families import get_family


def gain_importance(model: ChurnModel) -> np.ndarray:
    """Per-feature importance aligned with ``model.feature_names`` (total gain, or |standardised coef|)."""
    return get_family(model.model_name).importance(model.native, len(model.feature_names))


def shap_values(model: ChurnModel, x: np.ndarray) -> np.ndarray:
    """(n_rows, n_features) SHAP values on the log-odds scale (the bias column dropped)."""
    return feature_contributions(model, x)[:, :-1]


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
