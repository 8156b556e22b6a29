"""MLflow: tracking URI, run logging, model registration, aliases and the champion gate.

The train stage logs and registers every fit (alias ``challenger``; tag ``model_sha256`` = the content hash
of the model folder, so later stages find the version of the folder they read). The evaluate stage applies
the gate (:func:`decide_promotion`): ``champion`` moves to the challenger only when

* no leak alarm fired, and, where ground truth exists, its known-customer AUC / oracle AUC clears
  ``train.promote_min_oracle_ratio``; and
* it beats the current champion **on the same test rows**: in the paired user bootstrap, the share of
  replicates where its AUC is not above the champion's is below ``train.promotion_alpha`` (a champion whose
  features the current table lacks cannot be compared; then the floor alone decides, and the reason says so).

Otherwise the champion stays where it is (or stays absent) and :attr:`PromotionDecision.reason` says why.
Nothing here is written into a DVC output: the run-dependent record lives in MLflow only.
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
from churnflow.models.families import get_family

CHAMPION = "champion"
CHALLENGER = "challenger"
MODEL_SHA_TAG = "model_sha256"


@dataclass
class PromotionDecision:
    """Whether ``champion`` moves to the new version, and why."""

    promote: bool
    reason: str
    quality: str  # "promotable" | "not_better" | "below_floor" | "leak"


@dataclass
class RegisteredVersion:
    """What :func:`log_and_register` did: the run and the registered version (alias ``challenger``)."""

    registered_model: str
    version: str
    run_id: str
    tracking_uri: str
    model_uri: str
    aliases: list[str] = field(default_factory=list)
    champion_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for printing and MLflow)."""
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
    *,
    champion_version: str | None,
    comparison: Mapping[str, Any] | None,
    oracle_ratio: float | None,
    leak_alarm: bool,
    train: TrainConfig,
    comparable: bool = True,
) -> PromotionDecision:
    """Apply the gates (pure function; see the module docstring). ``comparison``: the paired comparison
    challenger (a) vs champion (b) on the same known-customer test rows, or None without a champion."""
    if leak_alarm:
        return PromotionDecision(
            False, "the leak alarm fired: a model that beats the oracle is a bug", "leak"
        )
    floor = train.promote_min_oracle_ratio
    if oracle_ratio is not None and not oracle_ratio >= floor:
        keep = f"keeping champion v{champion_version}" if champion_version else "no champion is set"
        return PromotionDecision(
            False,
            f"known-customer AUC is {oracle_ratio:.3f} x the oracle's, below the floor {floor:.2f}; {keep}",
            "below_floor",
        )
    floor_note = f"oracle ratio {oracle_ratio:.3f} ≥ {floor:.2f}" if oracle_ratio is not None else "no oracle"
    if champion_version is None:
        return PromotionDecision(True, f"first champion ({floor_note})", "promotable")
    if not comparable or comparison is None:
        return PromotionDecision(
            True,
            f"champion v{champion_version} cannot score this feature table (its features are missing): "
            f"replaced on the floor alone ({floor_note})",
            "promotable",
        )
    diff, (lo, hi) = comparison["difference"], comparison["difference_ci"]
    if comparison["p_a_not_better"] < train.promotion_alpha:
        return PromotionDecision(
            True,
            f"beats champion v{champion_version} on the same test rows: AUC {diff:+.4f} "
            f"[{lo:+.4f}, {hi:+.4f}], "
            f"P(not better) {comparison['p_a_not_better']:.3f} < {train.promotion_alpha} ({floor_note})",
            "promotable",
        )
    return PromotionDecision(
        False,
        f"does not beat champion v{champion_version} on the same test rows: AUC {diff:+.4f} "
        f"[{lo:+.4f}, {hi:+.4f}], P(not better) {comparison['p_a_not_better']:.3f} "
        f"≥ {train.promotion_alpha}; "
        "keeping the champion",
        "not_better",
    )


def pip_requirements(model_name: str) -> list[str]:
    """Pinned requirements of the pyfunc model (installed versions; no inference at log time)."""
    packages = ["mlflow", "numpy", "pandas", "polars", "pyarrow"]
    packages += list(get_family(model_name).packages)
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


def current_champion(client: Any, name: str) -> str | None:
    """The version behind the ``champion`` alias, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def find_version(client: Any, name: str, model_sha256: str) -> Any | None:
    """The newest registered version of ``name`` tagged with this model folder's content hash, or None."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name='{name}'")
    except MlflowException:
        return None
    hits = [v for v in versions if (v.tags or {}).get(MODEL_SHA_TAG) == model_sha256]
    return max(hits, key=lambda v: int(v.version)) if hits else None


def load_registered_model(name: str, version: str) -> ChurnModel:
    """The :class:`ChurnModel` inside a registered version (its logged model folder)."""
    import mlflow

    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    return pyfunc.unwrap_python_model().churn_model


def apply_promotion(client: Any, name: str, version: str, decision: PromotionDecision) -> None:
    """Move ``champion`` to ``version`` when ``decision.promote``; record the decision as version tags."""
    if decision.promote:
        client.set_registered_model_alias(name, CHAMPION, version)
    for key, value in {
        "quality": decision.quality,
        "promotion": "promoted" if decision.promote else "not_promoted",
        "promotion_reason": decision.reason[:5000],
    }.items():
        client.set_model_version_tag(name, version, key, value)


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
    """Log the final fit as an MLflow run, register it and set ``challenger`` (promotion is evaluate's).

    Inputs: the fitted ``model`` and its saved folder ``model_dir`` (logged whole as the pyfunc artifact),
    flat-or-nested ``params``, ``metrics``, ``tags`` (data hashes etc.) and a few feature rows as
    ``input_example``. Output: :class:`RegisteredVersion`. Side effects: MLflow only.
    """
    import mlflow
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    from churnflow.models.artifact import model_dir_sha256
    from churnflow.models.pyfunc import MODEL_DIR_ARTIFACT, OUTPUT_COLUMN, ChurnPyfunc

    uri = configure_mlflow(cfg.tracking)
    name = cfg.tracking.registered_model
    example = input_example[model.feature_names].astype("float64")
    signature = infer_signature(
        example, pd.DataFrame({OUTPUT_COLUMN: model.predict_proba(example)}, index=example.index)
    )
    sha = model_dir_sha256(model_dir)
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in flatten_params(params).items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        mlflow.set_tags({**dict(tags), MODEL_SHA_TAG: sha})
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
    client.set_registered_model_alias(name, CHALLENGER, version)
    client.set_model_version_tag(name, version, MODEL_SHA_TAG, sha)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))
    return RegisteredVersion(
        registered_model=name,
        version=version,
        run_id=run_id,
        tracking_uri=uri,
        model_uri=f"models:/{name}/{version}",
        aliases=[CHALLENGER],
        champion_version=current_champion(client, name),
    )
