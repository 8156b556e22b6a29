"""Build and fit LightGBM, XGBoost or a scaled, regularised logistic regression from ``ModelConfig``.

``fit_model`` returns a :class:`~churnflow.models.artifact.ChurnModel` whose native object saves in a
deterministic format. Class imbalance: with ``class_weight="balanced"`` each class gets total weight n/2; the
resulting odds shift is undone by ``logit_offset = log(w_neg / w_pos)`` so probabilities stay calibrated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from churnflow.models.artifact import (
    ChurnModel,
    _lightgbm_margin,
    _logreg_margin,
    _xgboost_margin,
)

MODEL_NAMES: tuple[str, ...] = ("lightgbm", "xgboost", "logreg")
#: called every ``report_every`` boosting rounds with (round, validation ROC-AUC); may raise to stop the fit
ProgressFn = Callable[[int, float], None]


class SingleClassError(ValueError):
    """The training labels hold only one class: no classifier can be fitted."""


@dataclass(frozen=True)
class ClassWeights:
    """Per-class sample weights and the logit offset that undoes them."""

    negative: float
    positive: float

    @property
    def logit_offset(self) -> float:
        """Add to the weighted model's log-odds to recover unweighted log-odds."""
        return float(np.log(self.negative / self.positive))


def class_weights(y: np.ndarray, mode: str) -> ClassWeights:
    """``balanced`` (each class sums to n/2) or ``none`` (all 1). Raises on a single-class ``y``."""
    y = np.asarray(y)
    n_pos = int((y == 1).sum())
    n_neg = int((y == 0).sum())
    if n_pos == 0 or n_neg == 0:
        raise SingleClassError(
            f"training labels hold a single class ({n_pos} churners, {n_neg} non-churners): cannot train a "
            "churn classifier — check the label definition, the horizon and the cutoffs"
        )
    if mode == "none":
        return ClassWeights(1.0, 1.0)
    if mode == "balanced":
        n = n_pos + n_neg
        return ClassWeights(n / (2.0 * n_neg), n / (2.0 * n_pos))
    raise ValueError(f"train.class_weight must be 'balanced' or 'none', got {mode!r}")


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score))


def _fit_lightgbm(
    params: dict[str, Any],
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    seed: int,
    valid: tuple[np.ndarray, np.ndarray] | None,
    progress: ProgressFn | None,
    report_every: int,
) -> tuple[Any, Callable[[np.ndarray], np.ndarray]]:
    import lightgbm as lgb

    params = dict(params)
    rounds = int(params.pop("n_estimators", params.pop("num_iterations", 100)))
    params.update({"seed": seed, "verbose": params.get("verbose", -1)})
    params.setdefault("objective", "binary")
    train_set = lgb.Dataset(x, label=y, weight=w, free_raw_data=False)
    callbacks: list[Any] = []
    valid_sets: list[Any] = []
    if valid is not None and progress is not None:
        x_val, y_val = valid
        valid_sets = [lgb.Dataset(x_val, label=y_val, reference=train_set)]
        params["metric"] = "auc"

        def _callback(env: Any) -> None:
            step = env.iteration + 1
            if step % report_every == 0 or step == rounds:
                progress(step, float(env.evaluation_result_list[0][2]))

        callbacks.append(_callback)
    booster = lgb.train(params, train_set, num_boost_round=rounds, valid_sets=valid_sets, callbacks=callbacks)
    return booster, _lightgbm_margin(booster)


def _fit_xgboost(
    params: dict[str, Any],
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    seed: int,
    valid: tuple[np.ndarray, np.ndarray] | None,
    progress: ProgressFn | None,
    report_every: int,
) -> tuple[Any, Callable[[np.ndarray], np.ndarray]]:
    import xgboost as xgb

    params = dict(params)
    rounds = int(params.pop("n_estimators", 100))
    if "n_jobs" in params:
        params["nthread"] = params.pop("n_jobs")
    params.update({"seed": seed, "verbosity": 0})
    params.setdefault("objective", "binary:logistic")
    dtrain = xgb.DMatrix(x, label=y, weight=w, missing=np.nan)
    evals: list[Any] = []
    callbacks: list[Any] = []
    if valid is not None and progress is not None:
        x_val, y_val = valid
        evals = [(xgb.DMatrix(x_val, label=y_val, missing=np.nan), "validation")]
        params["eval_metric"] = "auc"

        class _Report(xgb.callback.TrainingCallback):
            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                step = epoch + 1
                if step % report_every == 0 or step == rounds:
                    progress(step, float(evals_log["validation"]["auc"][-1]))
                return False

        callbacks.append(_Report())
    booster = xgb.train(
        params, dtrain, num_boost_round=rounds, evals=evals, callbacks=callbacks, verbose_eval=False
    )
    return booster, _xgboost_margin(booster)


def _fit_logreg(
    params: dict[str, Any],
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    seed: int,
    valid: tuple[np.ndarray, np.ndarray] | None,
    progress: ProgressFn | None,
    report_every: int,
) -> tuple[Any, Callable[[np.ndarray], np.ndarray]]:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: median 0 below
        medians = (
            np.nanmedian(np.where(np.isfinite(x), x, np.nan), axis=0) if len(x) else np.zeros(x.shape[1])
        )
    medians = np.where(np.isnan(medians), 0.0, medians)
    filled = np.where(np.isnan(x), medians, x)
    mean = filled.mean(axis=0)
    scale = filled.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    model = LogisticRegression(random_state=seed, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit((filled - mean) / scale, y, sample_weight=w)
    state = {
        "medians": medians.tolist(),
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "coef": model.coef_[0].tolist(),
        "intercept": float(model.intercept_[0]),
        "params": {k: v for k, v in sorted(params.items())},
    }
    margin = _logreg_margin(state)
    if valid is not None and progress is not None:
        progress(1, _auc(valid[1], margin(valid[0])))
    return state, margin


_FITTERS = {"lightgbm": _fit_lightgbm, "xgboost": _fit_xgboost, "logreg": _fit_logreg}


def merge_params(fixed: Mapping[str, Any], tuned: Mapping[str, Any]) -> dict[str, Any]:
    """Fixed parameters overlaid by tuned ones (sorted keys: deterministic logging)."""
    merged = {**dict(fixed), **dict(tuned)}
    return {k: merged[k] for k in sorted(merged)}


def fit_model(
    model_name: str,
    params: Mapping[str, Any],
    x: np.ndarray,
    y: np.ndarray,
    *,
    feature_names: list[str],
    seed: int,
    class_weight: str = "balanced",
    valid: tuple[np.ndarray, np.ndarray] | None = None,
    progress: ProgressFn | None = None,
    report_every: int = 25,
) -> ChurnModel:
    """Fit ``model_name`` with ``params`` on float matrix ``x`` (columns ``feature_names``) and 0/1 ``y``.

    ``valid`` + ``progress`` enable validation AUC reports during boosting (Optuna pruning). The returned
    model's ``threshold`` is 0.5 until the caller sets the chosen one.
    """
    if model_name not in _FITTERS:
        raise ValueError(f"model.name must be one of {MODEL_NAMES}, got {model_name!r}")
    if x.shape[1] != len(feature_names):
        raise ValueError(f"x has {x.shape[1]} columns but {len(feature_names)} feature names were given")
    y = np.asarray(y).astype(np.int64)
    weights = class_weights(y, class_weight)
    w = np.where(y == 1, weights.positive, weights.negative).astype(np.float64)
    native, margin = _FITTERS[model_name](dict(params), x, y, w, seed, valid, progress, report_every)
    return ChurnModel(
        model_name=model_name,
        feature_names=list(feature_names),
        threshold=0.5,
        margin_fn=margin,
        logit_offset=weights.logit_offset,
        native=native,
    )
