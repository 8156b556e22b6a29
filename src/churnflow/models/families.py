"""One object per model family: how it fits, scores, explains, saves and loads — and nothing else knows.

A :class:`ModelFamily` turns (params, float matrix, 0/1 labels, sample weights) into a native model, and
gives that model's raw log-odds (``margin``), signed per-feature contributions in the same log-odds
(TreeSHAP for the boosted trees, ``coef × standardised value`` for the logistic regression; each row sums
to the margin), a global importance (total gain, or |standardised coefficient|), and a deterministic file
format. ``FAMILIES`` maps ``model.name`` to its family; adding a family is adding one class here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

#: called every ``report_every`` boosting rounds with (round, validation ROC-AUC); may raise to stop the fit
ProgressFn = Callable[[int, float], None]
Valid = tuple[np.ndarray, np.ndarray] | None


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    from churnflow.stats import weighted_roc_auc

    return float(weighted_roc_auc(y, score)[0])


class ModelFamily:
    """The interface every family implements (see the module docstring)."""

    name: ClassVar[str]
    model_file: ClassVar[str]
    packages: ClassVar[tuple[str, ...]]  # pip requirements of the logged MLflow model

    def fit(
        self,
        params: dict[str, Any],
        x: np.ndarray,
        y: np.ndarray,
        w: np.ndarray,
        seed: int,
        valid: Valid = None,
        progress: ProgressFn | None = None,
        report_every: int = 25,
    ) -> Any:
        raise NotImplementedError

    def margin(self, native: Any, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def contributions(self, native: Any, x: np.ndarray) -> np.ndarray:
        """(n, n_features + 1) log-odds contributions, last column the bias; rows sum to ``margin``."""
        raise NotImplementedError

    def importance(self, native: Any, n_features: int) -> np.ndarray:
        raise NotImplementedError

    def save(self, native: Any, path: Path) -> None:
        raise NotImplementedError

    def load(self, path: Path) -> Any:
        raise NotImplementedError


def _threads(x: np.ndarray) -> int:
    """LightGBM prediction threads: one for a single row (a request: OpenMP threads there only compete with
    the other workers for the cores; same values), else LightGBM's default (0: OpenMP decides)."""
    return 1 if len(x) == 1 else 0


class LightGBMFamily(ModelFamily):
    name = "lightgbm"
    model_file = "model.txt"
    packages = ("lightgbm",)

    def fit(
        self,
        params: dict[str, Any],
        x: np.ndarray,
        y: np.ndarray,
        w: np.ndarray,
        seed: int,
        valid: Valid = None,
        progress: ProgressFn | None = None,
        report_every: int = 25,
    ) -> Any:
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
        return lgb.train(
            params, train_set, num_boost_round=rounds, valid_sets=valid_sets, callbacks=callbacks
        )

    def margin(self, native: Any, x: np.ndarray) -> np.ndarray:
        return np.asarray(native.predict(x, raw_score=True, num_threads=_threads(x)), dtype=np.float64)

    def contributions(self, native: Any, x: np.ndarray) -> np.ndarray:
        return np.asarray(native.predict(x, pred_contrib=True, num_threads=_threads(x)), dtype=np.float64)

    def importance(self, native: Any, n_features: int) -> np.ndarray:
        return np.asarray(native.feature_importance(importance_type="gain"), dtype=np.float64)

    def save(self, native: Any, path: Path) -> None:
        native.save_model(str(path))

    def load(self, path: Path) -> Any:
        import lightgbm as lgb

        return lgb.Booster(model_file=str(path))


class XGBoostFamily(ModelFamily):
    name = "xgboost"
    model_file = "model.json"
    packages = ("xgboost",)

    def fit(
        self,
        params: dict[str, Any],
        x: np.ndarray,
        y: np.ndarray,
        w: np.ndarray,
        seed: int,
        valid: Valid = None,
        progress: ProgressFn | None = None,
        report_every: int = 25,
    ) -> Any:
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
        return xgb.train(
            params, dtrain, num_boost_round=rounds, evals=evals, callbacks=callbacks, verbose_eval=False
        )

    def margin(self, native: Any, x: np.ndarray) -> np.ndarray:
        import xgboost as xgb

        matrix = xgb.DMatrix(x, missing=np.nan)
        return np.asarray(native.predict(matrix, output_margin=True), dtype=np.float64)

    def contributions(self, native: Any, x: np.ndarray) -> np.ndarray:
        import xgboost as xgb

        matrix = xgb.DMatrix(x, missing=np.nan)
        return np.asarray(native.predict(matrix, pred_contribs=True), dtype=np.float64)

    def importance(self, native: Any, n_features: int) -> np.ndarray:
        # total gain, the same measure as LightGBM's "gain"; unnamed features are called f0, f1, ...
        scores = native.get_score(importance_type="total_gain")
        return np.array([float(scores.get(f"f{i}", 0.0)) for i in range(n_features)])

    def save(self, native: Any, path: Path) -> None:
        tmp = path.with_suffix(".tmp.json")  # xgboost picks the format from the suffix
        native.save_model(str(tmp))
        tmp.replace(path)

    def load(self, path: Path) -> Any:
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(str(path))
        return booster


class LogisticFamily(ModelFamily):
    """A scaled, median-imputed, L2-regularised logistic regression stored as plain numbers (JSON)."""

    name = "logreg"
    model_file = "model.json"
    packages = ()

    def fit(
        self,
        params: dict[str, Any],
        x: np.ndarray,
        y: np.ndarray,
        w: np.ndarray,
        seed: int,
        valid: Valid = None,
        progress: ProgressFn | None = None,
        report_every: int = 25,
    ) -> Any:
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
        if valid is not None and progress is not None:
            progress(1, _auc(valid[1], self.margin(state, valid[0])))
        return state

    def _standardised(self, state: dict[str, Any], x: np.ndarray) -> np.ndarray:
        filled = np.where(np.isnan(x), np.asarray(state["medians"], dtype=np.float64), x)
        mean = np.asarray(state["mean"], dtype=np.float64)
        return (filled - mean) / np.asarray(state["scale"], dtype=np.float64)

    def margin(self, native: Any, x: np.ndarray) -> np.ndarray:
        return self._standardised(native, x) @ np.asarray(native["coef"], dtype=np.float64) + float(
            native["intercept"]
        )

    def contributions(self, native: Any, x: np.ndarray) -> np.ndarray:
        contrib = self._standardised(native, x) * np.asarray(native["coef"], dtype=np.float64)
        return np.hstack([contrib, np.full((x.shape[0], 1), float(native["intercept"]))])

    def importance(self, native: Any, n_features: int) -> np.ndarray:
        return np.abs(np.asarray(native["coef"], dtype=np.float64))

    def save(self, native: Any, path: Path) -> None:
        path.write_text(json.dumps(native, indent=2, sort_keys=True) + "\n")

    def load(self, path: Path) -> Any:
        return json.loads(path.read_text())


FAMILIES: dict[str, ModelFamily] = {f.name: f for f in (LightGBMFamily(), XGBoostFamily(), LogisticFamily())}
MODEL_NAMES: tuple[str, ...] = tuple(FAMILIES)


def get_family(name: str) -> ModelFamily:
    """The family called ``name``; raises ValueError naming the known ones."""
    if name not in FAMILIES:
        raise ValueError(f"model.name must be one of {' | '.join(MODEL_NAMES)}, got {name!r}")
    return FAMILIES[name]
