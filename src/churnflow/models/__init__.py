"""Model factory, time/user splits, Optuna tuning, training, MLflow logging/promotion and the model folder.

Public interface (see docs/architecture.md and docs/modelling.md):

* :func:`load_churn_model` ``(model_dir) -> ChurnModel`` with ``predict_proba``, ``feature_names``,
  ``threshold``, ``model_name``;
* :class:`ChurnPyfunc` (``churnflow.models.pyfunc``): the MLflow pyfunc returning ``churn_probability``;
* :func:`log_and_register` ``(model, model_dir, cfg, ...) -> RegisteredVersion``
  (``churnflow.models.tracking``);
* :func:`split_by_time` ``(labels, n_test_cutoffs, n_validation_cutoffs, ...) -> TimeSplit``.

Heavy modules (MLflow, Optuna) are imported lazily so that loading a model stays cheap.
"""

from __future__ import annotations

from typing import Any

from churnflow.models.artifact import ChurnModel, FeatureMismatchError, load_churn_model

__all__ = [
    "ChurnModel",
    "ChurnPyfunc",
    "FeatureMismatchError",
    "RegisteredVersion",
    "TimeSplit",
    "load_churn_model",
    "log_and_register",
    "split_by_time",
]

_LAZY = {
    "ChurnPyfunc": "churnflow.models.pyfunc",
    "RegisteredVersion": "churnflow.models.tracking",
    "log_and_register": "churnflow.models.tracking",
    "TimeSplit": "churnflow.models.splits",
    "split_by_time": "churnflow.models.splits",
}


def __getattr__(name: str) -> Any:
    """Import MLflow-/Optuna-dependent names on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'churnflow.models' has no attribute {name!r}")
