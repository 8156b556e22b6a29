"""The fitted churn model as a folder: native model file + ``model_meta.json``.

``artifacts/model/`` holds:

* ``model.txt`` (LightGBM text), ``model.json`` (XGBoost JSON) or ``model.json`` (logistic regression:
  imputation medians, scaler, coefficients) — the fitted model in its native, deterministic format;
* ``model_meta.json`` — model name, feature names, threshold (and how it was chosen), params, the logit
  offset that undoes class weighting, the validation-fitted calibrator, the split's cutoffs, validation
  metrics and data hashes. Nothing run-dependent, so two runs on the same data + config + seed give
  identical bytes (the MLflow run, version and aliases live in MLflow only).

Invariant: :meth:`ChurnModel.predict_proba` returns the calibrated ``P(churn)`` in ``[0, 1]`` for each row,
computed from the columns named in ``feature_names`` (in that order), independent of any other column.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from churnflow.models.calibration import Calibrator
from churnflow.models.families import FAMILIES, get_family
from churnflow.utils.io import atomic_path, write_json

META_FILE = "model_meta.json"
MODEL_FILES: dict[str, str] = {name: family.model_file for name, family in FAMILIES.items()}

MarginFn = Callable[[np.ndarray], np.ndarray]


class FeatureMismatchError(KeyError):
    """The input frame lacks feature columns the model needs (the message names them)."""


def to_matrix(frame: pl.DataFrame | pd.DataFrame, feature_names: list[str]) -> np.ndarray:
    """Select ``feature_names`` (in order) from ``frame`` as a float64 matrix; nulls become NaN.

    Raises :class:`FeatureMismatchError` naming every missing column.
    """
    missing = [name for name in feature_names if name not in frame.columns]
    if missing:
        shown = ", ".join(missing[:10]) + (f" … (+{len(missing) - 10} more)" if len(missing) > 10 else "")
        raise FeatureMismatchError(f"input lacks {len(missing)} feature column(s) the model needs: {shown}")
    if isinstance(frame, pl.DataFrame):
        return frame.select([pl.col(n).cast(pl.Float64) for n in feature_names]).to_numpy()
    return frame[feature_names].astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)


def sigmoid(margin: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    return np.exp(-np.logaddexp(0.0, -margin))


@dataclass
class ChurnModel:
    """A fitted churn classifier: margins from the native model, plus the metadata to use it.

    ``margin_fn`` maps a float64 matrix (columns = ``feature_names``) to raw log-odds; ``logit_offset`` is
    added before the sigmoid (it undoes the class weighting used in training); ``calibrator`` (fitted on
    out-of-time validation rows) maps that raw probability to the calibrated one every caller gets.
    """

    model_name: str
    feature_names: list[str]
    threshold: float
    margin_fn: MarginFn
    logit_offset: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)
    native: Any = None
    calibrator: Calibrator = field(default_factory=Calibrator)

    def predict_proba(self, frame: pl.DataFrame | pd.DataFrame) -> np.ndarray:
        """Calibrated ``P(churn)`` per row of ``frame`` (1-D float64 array, same order as the rows)."""
        matrix = to_matrix(frame, self.feature_names)
        return self.predict_proba_matrix(matrix)

    def predict_proba_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Calibrated ``P(churn)`` for a float64 matrix whose columns are ``feature_names``."""
        return self.calibrator.apply(self.predict_raw_matrix(matrix))

    def predict_raw_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """The model's own probability before calibration (what the calibrator is fitted on)."""
        if matrix.shape[0] == 0:
            return np.zeros(0, dtype=np.float64)
        return sigmoid(np.asarray(self.margin_fn(matrix), dtype=np.float64) + self.logit_offset)

    def predict(self, frame: pl.DataFrame | pd.DataFrame) -> np.ndarray:
        """0/1 decisions at :attr:`threshold`."""
        return (self.predict_proba(frame) >= self.threshold).astype(np.int8)


# ---------------------------------------------------------------- native (de)serialisation per model family


def save_native(model_name: str, native: Any, path: Path) -> None:
    """Write the fitted native model to ``path`` in its family's deterministic format."""
    family = get_family(model_name)
    with atomic_path(path) as tmp:
        family.save(native, tmp)


def load_native(model_name: str, path: Path) -> tuple[Any, MarginFn]:
    """Read a native model file; return it with its margin function."""
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} is missing")
    family = get_family(model_name)
    native = family.load(path)
    return native, lambda x: family.margin(native, x)


def save_churn_model(model: ChurnModel, model_dir: Path) -> None:
    """Write ``model`` into ``model_dir`` (native file + ``model_meta.json``). ``model_dir`` must exist.

    Callers wrap this in :func:`churnflow.utils.io.atomic_dir` so a failed save leaves nothing behind.
    """
    model_file = MODEL_FILES[model.model_name]
    save_native(model.model_name, model.native, model_dir / model_file)
    meta = dict(model.meta)
    meta.update(
        {
            "model_name": model.model_name,
            "model_file": model_file,
            "feature_names": list(model.feature_names),
            "threshold": float(model.threshold),
            "logit_offset": float(model.logit_offset),
            "calibration": model.calibrator.to_dict(),
        }
    )
    write_json(model_dir / META_FILE, meta)


def load_churn_model(model_dir: str | Path) -> ChurnModel:
    """Load a model folder written by the train stage (``artifacts/model/``) into a :class:`ChurnModel`."""
    model_dir = Path(model_dir)
    meta_path = model_dir / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} not found: is {model_dir} a churn model folder (train stage)?")
    meta = json.loads(meta_path.read_text())
    for key in ("model_name", "model_file", "feature_names", "threshold"):
        if key not in meta:
            raise KeyError(f"{meta_path}: missing key {key!r}")
    native, margin_fn = load_native(meta["model_name"], model_dir / meta["model_file"])
    return ChurnModel(
        model_name=meta["model_name"],
        feature_names=list(meta["feature_names"]),
        threshold=float(meta["threshold"]),
        margin_fn=margin_fn,
        logit_offset=float(meta.get("logit_offset", 0.0)),
        meta=meta,
        native=native,
        calibrator=Calibrator.from_dict(meta.get("calibration")),
    )


def model_dir_sha256(model_dir: str | Path) -> str:
    """Content hash of a model folder (file names and bytes): identifies a trained model across tools."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(p for p in Path(model_dir).rglob("*") if p.is_file()):
        digest.update(path.relative_to(model_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()
