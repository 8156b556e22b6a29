"""MLflow: tracking URI, run logging, model registration, aliases and the champion gate.

Promotion rule (issue 6): every new registered version gets alias ``challenger``; ``champion`` moves to it
only if its test ROC-AUC ≥ ``cfg.train.promote_auc`` **and** it beats the current champion's test ROC-AUC
(read from the champion version's run, metric ``test_roc_auc``). Otherwise the champion stays where it is
(or stays absent) and :attr:`RegisteredVersion.reason` says why in plain words.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from churnflow.config import Config, TrackingConfig, TrainConfig
from churnflow.models.artifact import ChurnModel

CHAMPION = "champion"
CHALLENGER = "challenger"
TEST_AUC_METRIC = "test_roc_auc"


@dataclass
class PromotionDecision:
    """Whether ``champion`` moves to the new version, and why."""

    promote: bool
    reason: str
    quality: str  # "promotable" | "staging" | "below_staging"


@dataclass
class RegisteredVersion:
    """What :func:`log_and_register` did: the run, the registered version and the alias decision."""

    registered_model: str
    version: str
    run_id: str
    tracking_uri: str
    model_uri: str
    aliases: list[str] = field(default_factory=list)
    promoted: bool = False
    reason: str = ""
    quality: str = ""
    test_roc_auc: float | None = None
    previous_champion_version: str | None = None
    previous_champion_auc: float | None = None
    champion_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for ``registry.json``."""
        return asdict(self)


def resolve_tracking_uri(tracking: TrackingConfig) -> str:
    """``MLFLOW_TRACKING_URI`` from the environment if set, else ``tracking.uri``.

    A relative ``sqlite:///path`` is resolved against the current working directory (absolute result).
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI") or tracking.uri
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        uri = prefix + str((Path.cwd() / uri[len(prefix) :]).resolve())
    return uri


def configure_mlflow(tracking: TrackingConfig) -> str:
    """Point MLflow at the resolved tracking URI (registry too) and select the experiment; return the URI."""
    import mlflow

    uri = resolve_tracking_uri(tracking)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment(tracking.experiment)
    return uri


def decide_promotion(
    new_auc: float, champion_auc: float | None, champion_version: str | None, train: TrainConfig
) -> PromotionDecision:
    """Apply the gates: ``new_auc ≥ promote_auc`` and ``new_auc > champion_auc`` (pure function)."""
    if new_auc >= train.promote_auc:
        quality = "promotable"
    elif new_auc >= train.staging_auc:
        quality = "staging"
    else:
        quality = "below_staging"
    if new_auc < train.promote_auc:
        staging = "passed" if quality == "staging" else "failed"
        keep = f"keeping champion v{champion_version}" if champion_version else "no champion is set"
        return PromotionDecision(
            False,
            f"test ROC-AUC {new_auc:.4f} is below the promotion gate {train.promote_auc:.2f} "
            f"(staging gate {train.staging_auc:.2f}: {staging}); {keep}",
            quality,
        )
    if champion_auc is not None and new_auc <= champion_auc:
        return PromotionDecision(
            False,
            f"test ROC-AUC {new_auc:.4f} does not beat champion v{champion_version} "
            f"({champion_auc:.4f}); keeping the champion",
            quality,
        )
    if champion_version is None:
        return PromotionDecision(
            True, f"test ROC-AUC {new_auc:.4f} passes {train.promote_auc:.2f}; first champion", quality
        )
    return PromotionDecision(
        True,
        f"test ROC-AUC {new_auc:.4f} passes {train.promote_auc:.2f} and beats champion v{champion_version} "
        f"({champion_auc:.4f})",
        quality,
    )


def pip_requirements(model_name: str) -> list[str]:
    """Pinned requirements of the pyfunc model (installed versions; no inference at log time)."""
    packages = ["mlflow", "numpy", "pandas", "polars", "pyarrow"]
    packages += {"lightgbm": ["lightgbm"], "xgboost": ["xgboost"], "logreg": []}[model_name]
    return [f"{name}=={metadata.version(name)}" for name in packages]


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, sub in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), sub, out)
    else:
        out[prefix] = value


def flatten_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Nested params → ``{"a.b": value}`` (MLflow params are flat)."""
    out: dict[str, Any] = {}
    _flatten("", params, out)
    return out


def current_champion(client: Any, name: str) -> tuple[str | None, float | None]:
    """(version, test ROC-AUC of its run) of the ``champion`` alias, or (None, None)."""
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None, None
    metrics = client.get_run(mv.run_id).data.metrics
    return str(mv.version), metrics.get(TEST_AUC_METRIC)


def log_and_register(
    model: ChurnModel,
    model_dir: Path,
    cfg: Config,
    *,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    input_example: pd.DataFrame,
    run_name: str = "train",
) -> RegisteredVersion:
    """Log the final fit as an MLflow run, register it, set ``challenger`` and apply the champion gate.

    Inputs: the fitted ``model`` and its saved folder ``model_dir`` (logged whole as the pyfunc artifact),
    flat-or-nested ``params``, ``metrics`` (must hold ``test_roc_auc``), ``tags`` (data hashes etc.) and a few
    feature rows as ``input_example``. Output: :class:`RegisteredVersion`. Side effects: MLflow only.
    """
    import mlflow
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    from churnflow.models.pyfunc import MODEL_DIR_ARTIFACT, OUTPUT_COLUMN, ChurnPyfunc

    if TEST_AUC_METRIC not in metrics:
        raise KeyError(f"metrics must include {TEST_AUC_METRIC!r} for the promotion gate")
    uri = configure_mlflow(cfg.tracking)
    name = cfg.tracking.registered_model
    example = input_example[model.feature_names].astype("float64")
    signature = infer_signature(
        example, pd.DataFrame({OUTPUT_COLUMN: model.predict_proba(example)}, index=example.index)
    )
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in flatten_params(params).items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        mlflow.set_tags(dict(tags))
        mlflow.log_dict({"feature_names": model.feature_names}, "feature_names.json")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=ChurnPyfunc(),
            artifacts={MODEL_DIR_ARTIFACT: str(model_dir)},
            signature=signature,
            input_example=example,
            pip_requirements=pip_requirements(model.model_name),
            registered_model_name=name,
        )
        run_id = run.info.run_id
    version = str(info.registered_model_version)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champ_version, champ_auc = current_champion(client, name)
    new_auc = float(metrics[TEST_AUC_METRIC])
    decision = decide_promotion(new_auc, champ_auc, champ_version, cfg.train)
    client.set_registered_model_alias(name, CHALLENGER, version)
    aliases = [CHALLENGER]
    if decision.promote:
        client.set_registered_model_alias(name, CHAMPION, version)
        aliases.append(CHAMPION)
    for key, value in {
        "quality": decision.quality,
        "promotion": "promoted" if decision.promote else "not_promoted",
        "promotion_reason": decision.reason,
        TEST_AUC_METRIC: f"{new_auc:.6f}",
    }.items():
        client.set_model_version_tag(name, version, key, value)
    return RegisteredVersion(
        registered_model=name,
        version=version,
        run_id=run_id,
        tracking_uri=uri,
        model_uri=f"models:/{name}/{version}",
        aliases=aliases,
        promoted=decision.promote,
        reason=decision.reason,
        quality=decision.quality,
        test_roc_auc=new_auc,
        previous_champion_version=champ_version,
        previous_champion_auc=champ_auc,
        champion_version=version if decision.promote else champ_version,
    )
