"""Optuna tuning for every model family composed from conf/ (Hydra `model=`), determinism and bad spaces."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from churnflow.config.loading import _validate, compose_config
from churnflow.config.modelling import ModelConfig
from churnflow.models.training import join_features_labels, make_split, train_final
from churnflow.models.tuning import run_study, suggest_params
from tests.model.synthetic import make_tables


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    features, labels = make_tables(200, 10, seed=1)
    return join_features_labels(features, labels)


@pytest.mark.parametrize("model", ["lightgbm", "xgboost", "logreg"])
def test_tune_and_train_each_model_deterministically(
    model: str, data, repo_root: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    raw = compose_config(
        repo_root / "conf", [f"model={model}", "tune.n_trials=4", "evaluate.bootstrap_samples=50"]
    )
    cfg = _validate(raw)
    if "n_estimators" in cfg.model.fixed:
        cfg.model.fixed["n_estimators"] = 60
    split = make_split(data, cfg)
    runs = [
        run_study(
            data, split, cfg, f"sqlite:///{tmp_path / f'study{i}.db'}", track=False, show_progress=False
        )
        for i in range(2)
    ]
    assert runs[0].best_params == runs[1].best_params and runs[0].best_value == runs[1].best_value
    assert set(runs[0].best_params) == set(cfg.model.search_space)
    result = train_final(data, cfg, runs[0].best_params, split)
    assert result.model.model_name == model
    assert result.validation_metrics["roc_auc"] > 0.7  # the synthetic signal is strong
    # Platt minimises log loss, not the binned ECE: it may not lower an already-logistic model's ECE
    assert result.validation_metrics["ece"] <= result.validation_metrics["ece_raw"] + 0.01
    assert 0.0 < result.threshold.threshold < 1.0
    assert result.model.calibrator.method == cfg.train.calibration


def test_study_resumes_from_sqlite(data, repo_root: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = _validate(compose_config(repo_root / "conf", ["tune.n_trials=2"]))
    cfg.model.fixed["n_estimators"] = 30
    split = make_split(data, cfg)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    run_study(data, split, cfg, storage, track=False, show_progress=False)
    again = run_study(data, split, cfg, storage, track=False, show_progress=False)
    assert again.n_trials == 4  # the stored trials were loaded, two more added


def test_bad_search_space_names_the_parameter(repo_root: Path) -> None:
    with pytest.raises(ValueError, match=r"model\.search_space\.lr"):
        ModelConfig(search_space={"lr": {"type": "float", "low": 1.0, "high": 0.1}})
    with pytest.raises(ValueError, match="log scale"):
        ModelConfig(search_space={"lr": {"type": "float", "low": 0.0, "high": 0.1, "log": True}})
    with pytest.raises(ValueError, match="categorical"):
        ModelConfig(search_space={"k": {"type": "categorical", "choices": []}})
    raw = compose_config(repo_root / "conf")
    raw["model"]["search_space"]["num_leaves"]["low"] = 99  # checked where the config is loaded
    with pytest.raises(ValueError, match=r"model\.search_space\.num_leaves"):
        _validate(raw)
    trial = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0)).ask()
    space = ModelConfig(
        search_space={"k": {"type": "int", "low": 2, "high": 4}, "c": {"type": "categorical", "choices": [1]}}
    ).search_space
    drawn = suggest_params(trial, space)
    assert 2 <= drawn["k"] <= 4 and drawn["c"] == 1
