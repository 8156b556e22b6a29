"""Package the registered champion into the BentoML store: :func:`package_model` (the ``package`` stage).

Steps: resolve ``@champion`` in the MLflow registry (else ``@challenger``, flagged loudly); download that
version; hash its model folder; compare it with this run's model folder and its training data hashes with
this run's (a champion trained on other data is named in the output, the record, the metadata and
``GET /models``); attach this run's evaluation blocks (``test``, ``oracle`` of ``reports/metrics.json``,
marked as describing the served model or not); store it under the tag
``<name>:<sha256 of model files + deterministic metadata>[:20]`` as a plain BentoML model holding the
downloaded MLflow model (``mlflow_model/``) and ``drift_reference.json``; the metadata records a hash of
every stored byte, which the service checks before it starts (serving never unpickles anything).
Invariant: the same inputs (model folder, registry state, config, metrics, drift reference) give the same
tag and a byte-identical :class:`PackageRecord`; nothing run-dependent (MLflow version numbers, run ids,
dates) enters the record or the tag, only the Bento model's ``registry`` metadata block.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from churnflow.config import Config
from churnflow.features import feature_names
from churnflow.models.artifact import model_dir_sha256
from churnflow.serving.loading import (
    DRIFT_REFERENCE_FILE,
    MLFLOW_MODEL_DIR,
    canonical_json,
    model_dir_of,
    store_sha256,
)
from churnflow.serving.settings import (
    build_metadata,
    check_feature_coverage,
    deterministic_part,
    to_bento_metadata,
)

PREFERRED_ALIASES: tuple[str, ...] = ("champion", "challenger")
#: Blocks of ``reports/metrics.json`` copied as they are into the metadata.
EVALUATION_BLOCKS: tuple[str, ...] = ("test", "oracle")
TAG_HASH_CHARS = 20


@dataclass(frozen=True)
class RegisteredRef:
    """One registered model version reached through an alias."""

    registered_model: str
    alias: str
    version: str
    run_id: str | None

    @property
    def uri(self) -> str:
        """``models:/<name>@<alias>``."""
        return f"models:/{self.registered_model}@{self.alias}"


@dataclass(frozen=True)
class PackageRecord:
    """What the package stage writes to ``artifacts/bento_model.json`` (deterministic fields only)."""

    bento_model_tag: str
    registered_model: str
    alias: str
    is_champion: bool
    model_uri: str
    model_sha256: str
    is_this_runs_model: bool
    trained_on_this_runs_data: bool | None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


@dataclass(frozen=True)
class PackageResult:
    """The record plus the run-dependent facts (printed by the stage, not written to the DVC output)."""

    record: PackageRecord
    ref: RegisteredRef
    metadata: dict[str, Any]


def resolve_alias(
    client: Any, registered_model: str, aliases: tuple[str, ...] = PREFERRED_ALIASES
) -> RegisteredRef:
    """The first of ``aliases`` that ``registered_model`` has (an ``MlflowClient``); LookupError if none."""
    from mlflow.exceptions import MlflowException

    tried: list[str] = []
    for alias in aliases:
        try:
            mv = client.get_model_version_by_alias(registered_model, alias)
        except MlflowException as exc:
            tried.append(f"@{alias}: {getattr(exc, 'message', exc)}")
            continue
        return RegisteredRef(registered_model, alias, str(mv.version), mv.run_id)
    raise LookupError(
        f"registered model {registered_model!r} has none of the aliases {list(aliases)} "
        f"(did the train/evaluate stages run against this MLflow tracking URI?): {'; '.join(tried)}"
    )


def _canonical_sha256(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def _read_meta(model_dir: Path) -> dict[str, Any]:
    import json

    path = model_dir / "model_meta.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {model_dir} a churn model folder?")
    return json.loads(path.read_text())


def _registry_entry(
    client: Any, name: str, alias: str, run_hashes: dict[str, Any], work: Path
) -> dict[str, Any] | None:
    """Version, training date, metrics with intervals and data check of ``name@alias`` (None if unset)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None
    local = Path(
        mlflow.artifacts.download_artifacts(f"models:/{name}/{mv.version}", dst_path=str(work / alias))
    )
    meta = _read_meta(model_dir_of(local))
    run = client.get_run(mv.run_id) if mv.run_id else None
    hashes = meta.get("data_hashes")
    return {
        "version": str(mv.version),
        "run_id": mv.run_id,
        "trained_at": (
            datetime.fromtimestamp(run.info.start_time / 1000, tz=UTC).isoformat()
            if run is not None
            else None
        ),
        "model_name": meta.get("model_name"),
        "model_sha256": model_dir_sha256(model_dir_of(local)),
        "threshold": meta.get("threshold"),
        "calibration": meta.get("calibration"),
        "test_metrics": meta.get("test_metrics"),
        "run_metrics": dict(sorted(run.data.metrics.items())) if run is not None else {},
        "data_hashes": hashes,
        "trained_on_this_runs_data": None if hashes is None or not run_hashes else hashes == run_hashes,
        "feature_count": len(meta.get("feature_names", [])),
        "features": list(meta.get("feature_names", [])),
        "_local": str(local),
    }


def package_model(
    cfg: Config,
    model_dir: Path,
    drift_reference: dict[str, Any] | None,
    metrics: dict[str, Any],
    tracking_uri: str,
) -> PackageResult:
    """Import the registry's champion (else challenger) into the BentoML store; see the module docstring.

    Inputs: the config, this run's model folder, drift reference and ``reports/metrics.json`` content, the
    MLflow tracking/registry URI. Side effects: MLflow downloads into a temporary folder and the BentoML
    store under ``$BENTOML_HOME`` (an entry with the same tag is replaced). Raises LookupError when the
    registered model has neither alias, MetadataError when the served model's features are not computed
    by ``cfg.features``.
    """
    import bentoml
    import mlflow
    from bentoml.exceptions import NotFound

    # models:/ downloads resolve through MLflow's global registry URI: pin both to the tracking store
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    name = cfg.tracking.registered_model
    run_meta = _read_meta(model_dir)
    run_hashes = run_meta.get("data_hashes") or {}
    run_sha = model_dir_sha256(model_dir)
    ref = resolve_alias(client, name)
    with tempfile.TemporaryDirectory(prefix="churnflow-package-") as tmp:
        work = Path(tmp)
        registry = {
            alias: _registry_entry(client, name, alias, run_hashes, work) for alias in PREFERRED_ALIASES
        }
        served = registry[ref.alias]
        assert served is not None  # resolve_alias found this alias
        local = Path(served.pop("_local"))
        for entry in registry.values():
            if entry is not None:
                entry.pop("_local", None)
        served_meta = _read_meta(model_dir_of(local))
        check_feature_coverage(list(served_meta.get("feature_names", [])), feature_names(cfg.features))
        is_this_run = served["model_sha256"] == run_sha
        same_data = served["trained_on_this_runs_data"]
        warnings = _warnings(name, ref.alias, is_this_run, same_data)
        evaluation = {
            "source": "reports/metrics.json",
            "describes_served_model": is_this_run,
            **{block: metrics[block] for block in EVALUATION_BLOCKS if block in metrics},
        }
        if not is_this_run:
            evaluation["note"] = (
                "these metrics describe this run's model, which is NOT the served one; see the served "
                "version's own test_metrics under champion/challenger"
            )
        metadata = build_metadata(
            served_meta,
            model={
                "registered_model": name,
                "alias": ref.alias,
                "is_champion": ref.alias == "champion",
                "model_name": served_meta["model_name"],
                "model_sha256": served["model_sha256"],
                "is_this_runs_model": is_this_run,
                "trained_on_this_runs_data": same_data,
                "data_hashes": served["data_hashes"],
                "this_runs_data_hashes": run_hashes,
                "drift_reference_sha256": _canonical_sha256(drift_reference),
            },
            serve=cfg.serve,
            features=cfg.features,
            data_bounds=(cfg.data.min_valid_ts, cfg.data.max_valid_ts),
            evaluation=evaluation,
            warnings=warnings,
            registry={"served_version": ref.version, **registry},
        )
        digest = hashlib.sha256(
            (served["model_sha256"] + _canonical_sha256(deterministic_part(metadata))).encode()
        ).hexdigest()
        tag = f"{cfg.serve.bento_model_name}:{digest[:TAG_HASH_CHARS]}"
        drift_bytes = canonical_json(drift_reference) if drift_reference is not None else None
        metadata["registry"]["store_sha256"] = store_sha256(local, drift_bytes)
        with contextlib.suppress(NotFound):
            bentoml.models.delete(tag)
        with bentoml.models.create(
            tag, labels={"alias": ref.alias, "registered_model": name}, metadata=to_bento_metadata(metadata)
        ) as model:
            shutil.copytree(local, Path(model.path) / MLFLOW_MODEL_DIR)
            if drift_bytes is not None:
                (Path(model.path) / DRIFT_REFERENCE_FILE).write_bytes(drift_bytes)
    record = PackageRecord(
        bento_model_tag=str(model.tag),
        registered_model=name,
        alias=ref.alias,
        is_champion=ref.alias == "champion",
        model_uri=ref.uri,
        model_sha256=served["model_sha256"],
        is_this_runs_model=is_this_run,
        trained_on_this_runs_data=same_data,
        warnings=warnings,
    )
    return PackageResult(record=record, ref=ref, metadata=metadata)


def _warnings(name: str, alias: str, is_this_run: bool, same_data: bool | None) -> list[str]:
    """Plain-words warnings (no run-dependent numbers, so the record stays deterministic)."""
    out: list[str] = []
    if alias != "champion":
        out.append(f"{name!r} has no @champion (no version passed the promotion gate): serving @{alias}")
    if same_data is False:
        out.append(
            f"the served @{alias} was trained on OTHER data than this run (its data hashes differ from "
            "artifacts/model/model_meta.json): it may be an old model from an earlier data set"
        )
    elif same_data is None:
        out.append(f"cannot tell which data the served @{alias} was trained on (no data_hashes recorded)")
    if not is_this_run:
        out.append(f"the served @{alias} is not the model this run trained (artifacts/model)")
    return out
