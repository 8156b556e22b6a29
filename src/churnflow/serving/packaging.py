"""Package the registered champion into the BentoML model store (the ``package`` stage's library side).

:func:`resolve_alias` picks ``@champion`` (else ``@challenger``, flagged) from the MLflow registry;
:func:`import_to_bentoml` imports that model version under a deterministic tag
``<name>:mlflow-v<version>`` with the serving metadata and the drift reference as a custom object.
Invariant: packaging the same registered version twice yields the same tag and the same record.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from typing import Any

from churnflow.serving.scoring import PyfuncLike
from churnflow.serving.settings import DRIFT_REFERENCE_OBJECT, ServingSettings

PREFERRED_ALIASES: tuple[str, ...] = ("champion", "challenger")


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
    """What the package stage writes to ``artifacts/bento_model.json``."""

    bento_model_tag: str
    registered_model: str
    mlflow_version: str
    alias: str
    model_uri: str
    is_champion: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


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
            tried.append(f"@{alias}: {exc.message if hasattr(exc, 'message') else exc}")
            continue
        return RegisteredRef(registered_model, alias, str(mv.version), mv.run_id)
    raise LookupError(
        f"registered model {registered_model!r} has none of the aliases {list(aliases)} "
        f"(did the train stage run against this MLflow tracking URI?): {'; '.join(tried)}"
    )


def bento_tag(name: str, version: str) -> str:
    """Deterministic BentoML tag for an MLflow model version: ``<name>:mlflow-v<version>``."""
    return f"{name}:mlflow-v{version}"


def import_to_bentoml(
    ref: RegisteredRef,
    bento_model_name: str,
    metadata: dict[str, Any],
    drift_reference: dict[str, Any] | None,
) -> PackageRecord:
    """Import ``ref.uri`` into the BentoML store (replacing an entry with the same tag) and return the record.

    Side effects: writes to the BentoML model store under ``$BENTOML_HOME``.
    """
    import bentoml
    from bentoml.exceptions import NotFound

    tag = bento_tag(bento_model_name, ref.version)
    with contextlib.suppress(NotFound):
        bentoml.models.delete(tag)
    custom_objects = {DRIFT_REFERENCE_OBJECT: drift_reference} if drift_reference is not None else None
    model = bentoml.mlflow.import_model(
        tag,
        ref.uri,
        labels={"alias": ref.alias, "registered_model": ref.registered_model},
        metadata=metadata,
        custom_objects=custom_objects,
    )
    return PackageRecord(
        bento_model_tag=str(model.tag),
        registered_model=ref.registered_model,
        mlflow_version=ref.version,
        alias=ref.alias,
        model_uri=ref.uri,
        is_champion=ref.alias == "champion",
    )


def load_packaged(tag: str) -> tuple[PyfuncLike, ServingSettings]:
    """``(pyfunc model, ServingSettings)`` of BentoML model ``tag`` (reads the store under ``$BENTOML_HOME``).

    Raises LookupError with a hint when the tag is not in the store.
    """
    import os

    import bentoml
    from bentoml.exceptions import NotFound

    try:
        stored = bentoml.models.get(tag)
    except NotFound as exc:
        home = os.environ.get("BENTOML_HOME", "~/bentoml")
        raise LookupError(
            f"BentoML model {tag!r} is not in the store at BENTOML_HOME={home}: run the package stage "
            "(`dvc repro package`) first"
        ) from exc
    return bentoml.mlflow.load_model(stored), ServingSettings.from_metadata(dict(stored.info.metadata))
