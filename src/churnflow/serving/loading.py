"""Load the packaged model from the BentoML store and prove it can serve, or fail with ONE clear message.

A packaged entry holds ``mlflow_model/`` (the registered MLflow model as downloaded) and
``drift_reference.json``. Serving reads the train stage's model folder inside it with
:func:`churnflow.models.artifact.load_churn_model` (native LightGBM/XGBoost/JSON files): it never unpickles
anything and never imports MLflow. Checks, in order (each failure is a :class:`ModelLoadError` naming the
tag and what is wrong): the tag is in the store; its metadata is complete (:class:`ServingSettings`);
every stored byte still hashes to the ``store_sha256`` recorded at packaging (a truncated model file or a
garbage pickle is caught before any parser sees it); the model loads; its feature list equals the
metadata's and is computed by the packaged feature config; a probe row scores to a probability in [0, 1]
with finite contributions. The service runs this in its start-up path, so a bad model stops
``bentoml serve`` with a non-zero exit instead of a restart loop.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from churnflow.features import feature_names as computed_feature_names
from churnflow.models.artifact import ChurnModel, load_churn_model, model_dir_sha256
from churnflow.models.contributions import feature_contributions
from churnflow.monitoring.online import RollingDrift
from churnflow.serving.settings import MetadataError, ServingSettings, from_bento_metadata

#: Environment variable naming the BentoML model tag to serve.
MODEL_TAG_ENV = "CHURNFLOW_BENTO_MODEL"
#: Name of the pyfunc artifact holding the train stage's model folder (``churnflow.models.pyfunc``).
MODEL_DIR_ARTIFACT = "model_dir"
#: Layout of a packaged entry in the BentoML store.
MLFLOW_MODEL_DIR = "mlflow_model"
DRIFT_REFERENCE_FILE = "drift_reference.json"


class ModelLoadError(RuntimeError):
    """The packaged model cannot be served; the message says which model and why, in one line."""


@dataclass(frozen=True)
class ServedModel:
    """A checked, loaded model with everything the service needs."""

    tag: str
    settings: ServingSettings
    model: ChurnModel
    drift_reference: dict[str, Any] | None
    path: Path


def model_tag_from_env(default_name: str = "churn") -> str:
    """``$CHURNFLOW_BENTO_MODEL`` or ``<default_name>:latest``."""
    return os.environ.get(MODEL_TAG_ENV) or f"{default_name}:latest"


def canonical_json(value: Any) -> bytes:
    """Sorted, compact JSON bytes (stable hash input and the stored drift reference)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def store_sha256(mlflow_model: Path, drift_reference: bytes | None) -> str:
    """SHA-256 of every byte a packaged entry stores (MLflow model folder + drift reference file)."""
    digest = hashlib.sha256(model_dir_sha256(mlflow_model).encode())  # names and bytes of every file
    digest.update(hashlib.sha256(drift_reference or b"").digest())
    return digest.hexdigest()


def model_dir_of(mlflow_model: Path) -> Path:
    """The train stage's model folder inside a downloaded MLflow pyfunc model (read from ``MLmodel``).

    Raises FileNotFoundError naming what is missing.
    """
    import yaml

    spec_path = mlflow_model / "MLmodel"
    if not spec_path.is_file():
        raise FileNotFoundError(f"{spec_path} is missing: not an MLflow model")
    spec = yaml.safe_load(spec_path.read_text()) or {}
    try:
        relative = spec["flavors"]["python_function"]["artifacts"][MODEL_DIR_ARTIFACT]["path"]
    except (KeyError, TypeError) as exc:
        raise FileNotFoundError(f"{spec_path} names no pyfunc artifact {MODEL_DIR_ARTIFACT!r}") from exc
    folder = mlflow_model / relative
    if not (folder / "model_meta.json").is_file():
        raise FileNotFoundError(f"{folder}/model_meta.json is missing")
    return folder


def _fail(tag: str, what: str) -> ModelLoadError:
    return ModelLoadError(f"cannot serve BentoML model {tag!r}: {what}")


def load_served_model(tag: str) -> ServedModel:
    """Resolve ``tag`` in the store under ``$BENTOML_HOME``, load and check it (see the module docstring)."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        stored = bentoml.models.get(tag)
    except NotFound:
        home = os.environ.get("BENTOML_HOME", "~/bentoml")
        raise _fail(
            tag,
            f"not in the BentoML store at BENTOML_HOME={home}; run the package stage (`dvc repro package`) "
            f"or set ${MODEL_TAG_ENV} to a stored tag",
        ) from None
    except Exception as exc:  # a store entry whose model.yaml is unreadable
        raise _fail(tag, f"the store entry is unreadable ({type(exc).__name__}: {exc})") from None
    tag = str(stored.tag)
    try:
        metadata = from_bento_metadata(dict(stored.info.metadata))
        settings = ServingSettings.from_metadata(metadata)
    except MetadataError as exc:
        raise _fail(tag, str(exc)) from None
    root = Path(stored.path)
    drift_path = root / DRIFT_REFERENCE_FILE
    drift_bytes = drift_path.read_bytes() if drift_path.is_file() else None
    recorded = (metadata.get("registry") or {}).get("store_sha256")
    actual = (
        store_sha256(root / MLFLOW_MODEL_DIR, drift_bytes) if (root / MLFLOW_MODEL_DIR).is_dir() else None
    )
    if actual is None or actual != recorded:
        raise _fail(
            tag,
            f"the stored files in {root} differ from what was packaged (sha256 "
            f"{(actual or 'missing')[:12]}… ≠ recorded {str(recorded)[:12]}…): the store entry is corrupt "
            "or was edited; re-run the package stage",
        )
    try:
        model_dir = model_dir_of(root / MLFLOW_MODEL_DIR)
        model = load_churn_model(model_dir)
    except Exception as exc:  # any failure to read the native model means: cannot serve
        raise _fail(tag, f"the model does not load ({type(exc).__name__}: {exc})") from None
    if model_dir_sha256(model_dir) != settings.model_sha256:
        raise _fail(tag, "the model folder does not match the model_sha256 in the metadata")
    check_model(tag, model, settings)
    drift_reference = None
    if drift_bytes is not None:
        try:
            drift_reference = json.loads(drift_bytes)
            RollingDrift.from_reference(drift_reference)
        except (ValueError, TypeError, KeyError) as exc:
            raise _fail(tag, f"{DRIFT_REFERENCE_FILE} cannot drive the rolling drift score ({exc})") from None
    return ServedModel(tag, settings, model, drift_reference, root)


def check_model(tag: str, model: ChurnModel, settings: ServingSettings) -> None:
    """Feature lists agree and a probe scores sensibly; ModelLoadError otherwise."""
    if tuple(model.feature_names) != settings.feature_names:
        raise _fail(
            tag,
            f"feature-list mismatch: the model has {len(model.feature_names)} features, the metadata "
            f"{len(settings.feature_names)} (first difference: "
            f"{_first_difference(list(model.feature_names), list(settings.feature_names))})",
        )
    computed = set(computed_feature_names(settings.features))
    missing = [n for n in model.feature_names if n not in computed]
    if missing:
        raise _fail(
            tag,
            f"{len(missing)} model feature(s) are not computed by the packaged feature config, "
            f"e.g. {missing[:3]}",
        )
    probe = np.vstack([np.zeros(len(model.feature_names)), np.full(len(model.feature_names), np.nan)])
    try:
        probabilities = np.asarray(model.predict_proba_matrix(probe), dtype=np.float64)
        contributions = feature_contributions(model, probe)
    except Exception as exc:  # the native model cannot score: not servable
        raise _fail(tag, f"the model cannot score a probe row ({type(exc).__name__}: {exc})") from None
    if probabilities.shape != (2,) or not np.all((probabilities >= 0) & (probabilities <= 1)):
        raise _fail(tag, f"the model scores a probe row outside [0, 1]: {probabilities.tolist()}")
    if contributions.shape != (2, len(model.feature_names) + 1) or not np.all(np.isfinite(contributions)):
        raise _fail(tag, "the model's feature contributions are not finite or have the wrong shape")


def _first_difference(a: list[str], b: list[str]) -> str:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"position {i}: {x!r} vs {y!r}"
    return f"lengths {len(a)} vs {len(b)}"
