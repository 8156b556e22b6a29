"""Optuna tuning: seeded TPE over the per-model search space in ``conf/model/*.yaml``, with pruning.

Training rows are the purged tuning-train rows (labels known by the first validation cutoff), validation the
latest development cutoffs (:func:`~churnflow.models.splits.split_by_time`); the test cutoffs are never
touched. Trials are stored in a sqlite study (resumable); each trial is an MLflow run nested under one study
run when ``track`` is on. Deterministic: ``TPESampler(seed)``, one trial at a time, seeded models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import polars as pl
from sklearn.metrics import roc_auc_score

from churnflow.config import Config, ModelConfig, TuneConfig
from churnflow.config.modelling import SearchDim
from churnflow.models.factory import fit_model, merge_params
from churnflow.models.splits import TimeSplit, user_bucket
from churnflow.models.training import Dataset


@dataclass
class TuneResult:
    """Best tuned parameters and a summary of the study (JSON-ready, deterministic)."""

    best_params: dict[str, Any]
    best_value: float
    n_trials: int
    n_complete: int
    n_pruned: int
    study_name: str
    trials: list[dict[str, Any]] = field(default_factory=list)  # number, state, value, params (no times)
    budget: dict[str, Any] = field(default_factory=dict)  # tune.max_rows and the tuning-train rows used

    def to_dict(self, model_name: str, tune: TuneConfig) -> dict[str, Any]:
        """The ``artifacts/best_params.json`` payload."""
        return {
            "model": model_name,
            "params": dict(sorted(self.best_params.items())),
            "best_value": self.best_value,
            "metric": tune.metric,
            "n_trials": self.n_trials,
            "n_complete": self.n_complete,
            "n_pruned": self.n_pruned,
            "study_name": self.study_name,
            "n_validation_cutoffs": tune.n_validation_cutoffs,
            "budget": self.budget,
        }


def suggest_params(trial: optuna.Trial, space: Mapping[str, SearchDim]) -> dict[str, Any]:
    """One draw from ``space`` (checked when the config was loaded: ``ModelConfig.search_space``)."""
    params: dict[str, Any] = {}
    for name, dim in space.items():
        if dim.type == "categorical":
            params[name] = trial.suggest_categorical(name, list(dim.choices or []))
        elif dim.type == "int":
            params[name] = trial.suggest_int(name, int(dim.low or 0), int(dim.high or 0), log=dim.log)
        else:
            params[name] = trial.suggest_float(name, float(dim.low or 0), float(dim.high or 0), log=dim.log)
    return params


def budget_rows(user_ids: pl.Series, mask: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """``mask`` narrowed to a seeded sample of users holding at most ``max_rows`` of its rows (all when 0).

    Whole users are kept (all their rows, as the splits do); the sample is the users with the smallest
    seeded hash, so a larger budget keeps a superset of a smaller one's users.
    """
    if max_rows <= 0 or int(mask.sum()) <= max_rows:
        return mask
    bucket = user_bucket(user_ids, seed)
    rows_per_user = pl.DataFrame({"b": bucket[mask]}).group_by("b").len().sort("b")
    last = int(np.searchsorted(np.cumsum(rows_per_user["len"].to_numpy()), max_rows, side="right"))
    return mask & (bucket <= rows_per_user["b"][max(last, 1) - 1])  # at least one user


def make_pruner(tune: TuneConfig) -> optuna.pruners.BasePruner:
    """``median`` | ``successive_halving`` | ``none``."""
    if tune.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=tune.pruner_warmup_trials, n_warmup_steps=0)
    if tune.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if tune.pruner == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"tune.pruner must be median | successive_halving | none, got {tune.pruner!r}")


def run_study(
    data: Dataset,
    split: TimeSplit,
    cfg: Config,
    storage: str | None,
    *,
    track: bool = True,
    show_progress: bool = True,
) -> TuneResult:
    """Tune ``cfg.model`` on ``split.train`` → ``split.validation`` (ROC-AUC, maximised).

    ``storage``: an Optuna storage URL (``sqlite:///…``) or None (in memory). With ``track`` each trial is an
    MLflow run nested under the active run (the caller opens the study run).
    """
    model: ModelConfig = cfg.model
    tune: TuneConfig = cfg.tune
    train = budget_rows(data.frame.get_column("user_id"), split.train, tune.max_rows, tune.sampler_seed)
    budget = {
        "max_rows": tune.max_rows,
        "train_rows": int(train.sum()),
        "train_rows_available": int(split.train.sum()),
        "train_users": int(data.frame.filter(pl.Series(train)).get_column("user_id").n_unique()),
    }
    x_tr, y_tr = data.matrix(train), data.target(train)
    x_va, y_va = data.matrix(split.validation), data.target(split.validation)
    if len(np.unique(y_va)) < 2:
        raise ValueError(
            f"the validation split ({len(y_va)} rows at {split.validation_cutoffs}) holds a single class: "
            "cannot tune on ROC-AUC; use more tune.n_validation_cutoffs or a longer export"
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study_name = f"churn-{model.name}"
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=tune.sampler_seed),
        pruner=make_pruner(tune),
        load_if_exists=True,
    )

    def objective(trial: optuna.Trial) -> float:
        tuned = suggest_params(trial, model.search_space)

        def report(step: int, value: float) -> None:
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step} (validation AUC {value:.4f})")

        state, value = "COMPLETE", float("nan")
        try:
            fitted = fit_model(
                model.name,
                merge_params(model.fixed, tuned),
                x_tr,
                y_tr,
                feature_names=data.feature_names,
                seed=cfg.seed,
                class_weight=cfg.train.class_weight,
                valid=(x_va, y_va),
                progress=report,
                report_every=tune.report_every,
            )
            value = float(roc_auc_score(y_va, fitted.predict_proba_matrix(x_va)))
            return value
        except optuna.TrialPruned:
            state = "PRUNED"
            raise
        finally:
            if track:
                _log_trial(trial.number, tuned, value, state)

    callbacks: list[Any] = []
    if show_progress:
        from churnflow.utils.progress import progress

        bar = progress(total=tune.n_trials, desc=f"tune {model.name}", unit="trial")

        def _tick(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            bar.update(1)
            if study.best_trials:
                bar.set_postfix(best=f"{study.best_value:.4f}")

        callbacks.append(_tick)
    try:
        study.optimize(
            objective,
            n_trials=tune.n_trials,
            timeout=tune.timeout_s or None,
            n_jobs=1,
            callbacks=callbacks,
            gc_after_trial=False,
        )
    finally:
        if show_progress:
            bar.close()
    states = [t.state for t in study.trials]
    complete = sum(s == optuna.trial.TrialState.COMPLETE for s in states)
    if complete == 0:
        raise RuntimeError(f"no trial of study {study_name!r} completed ({len(states)} run)")
    trials = [
        {
            "number": t.number,
            "state": t.state.name,
            "validation_roc_auc": t.value,
            **{f"param_{k}": v for k, v in sorted(t.params.items())},
        }
        for t in study.trials
    ]
    return TuneResult(
        best_params=dict(study.best_params),
        best_value=float(study.best_value),
        n_trials=len(states),
        n_complete=complete,
        n_pruned=sum(s == optuna.trial.TrialState.PRUNED for s in states),
        study_name=study_name,
        trials=trials,
        budget=budget,
    )


def _log_trial(number: int, params: Mapping[str, Any], value: float, state: str) -> None:
    """One nested MLflow run per trial (params, validation AUC, state)."""
    import mlflow

    with mlflow.start_run(run_name=f"trial-{number:03d}", nested=True):
        mlflow.log_params({k: str(v) for k, v in params.items()})
        mlflow.set_tag("trial_state", state)
        mlflow.set_tag("trial_number", str(number))
        if value == value:  # not NaN
            mlflow.log_metric("validation_roc_auc", value)
