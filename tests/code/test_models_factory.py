"""Model factory + model folder: every family fits, saves deterministic bytes, reloads to identical scores."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from churnflow.models import FeatureMismatchError, load_churn_model
from churnflow.models.artifact import MODEL_FILES, save_churn_model
from churnflow.models.factory import SingleClassError, class_weights, fit_model

PARAMS = {
    "lightgbm": {
        "n_estimators": 60,
        "verbose": -1,
        "n_jobs": 1,
        "deterministic": True,
        "force_row_wise": True,
    },
    "xgboost": {"n_estimators": 60, "tree_method": "hist", "n_jobs": 1},
    "logreg": {"C": 1.0, "l1_ratio": 0.5, "solver": "saga", "max_iter": 3000},
}
NAMES = ["a", "b", "c", "d"]


def _data(n: int = 1500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = (rng.random(n) < 1 / (1 + np.exp(-(-1.5 + 1.5 * x[:, 0] - x[:, 1])))).astype(int)
    x[rng.random(x.shape) < 0.05] = np.nan
    return x, y


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", ["lightgbm", "xgboost", "logreg"])
def test_fit_save_load_roundtrip_and_deterministic_bytes(name: str, tmp_path: Path) -> None:
    x, y = _data()
    hashes = []
    for run in range(2):
        model = fit_model(name, PARAMS[name], x, y, feature_names=NAMES, seed=7)
        model.threshold = 0.3
        folder = tmp_path / f"m{run}"
        folder.mkdir()
        save_churn_model(model, folder)
        hashes.append((_sha(folder / MODEL_FILES[name]), _sha(folder / "model_meta.json")))
    assert hashes[0] == hashes[1], "same data + params + seed must give the same bytes"
    loaded = load_churn_model(tmp_path / "m0")
    frame = pl.DataFrame(x, schema=NAMES, orient="row")
    p = loaded.predict_proba(frame)
    assert np.allclose(p, model.predict_proba_matrix(x))
    assert np.allclose(p, loaded.predict_proba(frame.to_pandas()))
    assert ((p >= 0) & (p <= 1)).all() and loaded.threshold == 0.3 and loaded.model_name == name
    # column order and extra columns do not matter; only the named features are read
    shuffled = frame.select(["d", "c", "b", "a"]).with_columns(pl.lit("x").alias("user_name"))
    assert np.allclose(loaded.predict_proba(shuffled), p)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, p) > 0.75


@pytest.mark.parametrize("name", ["lightgbm", "logreg"])
def test_balanced_weights_are_undone_so_probabilities_stay_calibrated(name: str) -> None:
    x, y = _data(4000)
    model = fit_model(name, PARAMS[name], x, y, feature_names=NAMES, seed=1, class_weight="balanced")
    assert model.logit_offset < 0  # churners are the minority: the weighted odds are shrunk back
    assert abs(model.predict_proba_matrix(x).mean() - y.mean()) < 0.05


def test_single_class_fails_with_a_clear_message() -> None:
    x, _ = _data(100)
    with pytest.raises(SingleClassError, match="single class"):
        fit_model("lightgbm", PARAMS["lightgbm"], x, np.zeros(100), feature_names=NAMES, seed=1)
    with pytest.raises(ValueError, match="class_weight"):
        class_weights(np.array([0, 1]), "sometimes")


def test_unknown_model_and_missing_features_fail_by_name(tmp_path: Path) -> None:
    x, y = _data(200)
    with pytest.raises(ValueError, match=r"model\.name"):
        fit_model("catboost", {}, x, y, feature_names=NAMES, seed=1)
    model = fit_model("logreg", PARAMS["logreg"], x, y, feature_names=NAMES, seed=1)
    with pytest.raises(FeatureMismatchError, match="c, d"):
        model.predict_proba(pd.DataFrame({"a": [1.0], "b": [2.0]}))
    with pytest.raises(FileNotFoundError, match=r"model_meta\.json"):
        load_churn_model(tmp_path)
