"""Fit a model family (``churnflow.models.families``) with class weights into a :class:`ChurnModel`.

``fit_model`` returns a :class:`~churnflow.models.artifact.ChurnModel` whose native object saves in a
deterministic format. Class imbalance: with ``class_weight="balanced"`` each class gets total weight n/2; the
resulting odds shift is undone by ``logit_offset = log(w_neg / w_pos)`` so probabilities stay calibrated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from churnflow.models.artifact import ChurnModel
from churnflow.models.families import MODEL_NAMES, ProgressFn, get_family

__all__ = ["MODEL_NAMES", "ClassWeights", "SingleClassError", "class_weights", "fit_model", "merge_params"]


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
    family = get_family(model_name)
    if x.shape[1] != len(feature_names):
        raise ValueError(f"x has {x.shape[1]} columns but {len(feature_names)} feature names were given")
    y = np.asarray(y).astype(np.int64)
    weights = class_weights(y, class_weight)
    w = np.where(y == 1, weights.positive, weights.negative).astype(np.float64)
    native = family.fit(dict(params), x, y, w, seed, valid, progress, report_every)
    return ChurnModel(
        model_name=model_name,
        feature_names=list(feature_names),
        threshold=0.5,
        margin_fn=lambda m: family.margin(native, m),
        logit_offset=weights.logit_offset,
        native=native,
    )
