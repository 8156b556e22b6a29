"""What the service needs to know, as carried by the packaged BentoML model's metadata.

The package stage writes it (:func:`build_metadata`); the service and ``churnflow score`` read it
(:meth:`ServingSettings.from_metadata`), so serving never consults the repository's ``params.yaml``: the
run's feature windows, its ``data.min_valid_ts``/``max_valid_ts`` and the whole ``serve`` group travel with
the model. Layout (``metadata_version`` 2): everything except ``registry`` is deterministic for the same
inputs (it is what the Bento model's version hash covers); ``registry`` holds the run-dependent MLflow
facts (version numbers, run ids, training dates). Invariant: ``from_metadata(build_metadata(...))``
round-trips every field.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from omegaconf import OmegaConf

from churnflow.config.data import iso_date_ms
from churnflow.config.features import FeaturesConfig
from churnflow.config.serve import ServeConfig
from churnflow.serving.risk import RiskBands
from churnflow.serving.schemas import ApiLimits

#: Bumped on any incompatible change of the metadata layout.
METADATA_VERSION = 2
#: The BentoML model metadata key holding the serving metadata as one JSON string (BentoML metadata cannot
#: hold None values; a JSON string keeps every value exactly).
METADATA_KEY = "churnflow_serving"


def to_bento_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """The BentoML metadata for :func:`build_metadata`'s dict: the JSON plus a few readable fields."""
    import json

    return {
        METADATA_KEY: json.dumps(metadata, sort_keys=True),
        "metadata_version": metadata["metadata_version"],
        "registered_model": metadata["model"]["registered_model"],
        "alias": metadata["model"]["alias"],
    }


def from_bento_metadata(bento_metadata: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`to_bento_metadata`; MetadataError when the key is missing or not JSON."""
    import json

    text = bento_metadata.get(METADATA_KEY)
    if not isinstance(text, str):
        raise MetadataError(f"model metadata lacks key {METADATA_KEY!r}: re-run the package stage")
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise MetadataError(f"model metadata {METADATA_KEY!r} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise MetadataError(f"model metadata {METADATA_KEY!r} is not a JSON object")
    return value


class MetadataError(ValueError):
    """The packaged model's metadata lacks a key or holds a bad value (the message names it)."""


def iso_day_ms(text: str, key: str) -> int:
    """ISO date or instant (naive = UTC, as in ``data.min_valid_ts``) → epoch ms; MetadataError on error."""
    try:
        return iso_date_ms(text, key)
    except ValueError as exc:
        raise MetadataError(str(exc)) from exc


def _structured(schema: type, values: Any, key: str) -> Any:
    """Merge ``values`` onto the dataclass ``schema`` (unknown keys and wrong types fail naming ``key``)."""
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), values))
    except Exception as exc:  # omegaconf raises several error types, all meaning "bad value"
        raise MetadataError(f"model metadata {key!r}: {exc}") from exc


@dataclass(frozen=True)
class ServingSettings:
    """Model identity, decision rule, feature and data config and ``serve`` group of one packaged model."""

    registered_model: str
    model_version: str
    model_alias: str
    model_name: str
    model_sha256: str
    feature_names: tuple[str, ...]
    threshold: float
    risk_bands: RiskBands
    features: FeaturesConfig
    data_bounds: tuple[str, str]  # the run's data.min_valid_ts, data.max_valid_ts
    serve: ServeConfig
    models_info: dict[str, Any]
    warnings: tuple[str, ...]

    @property
    def is_champion(self) -> bool:
        """True when the packaged version carried ``@champion``."""
        return self.model_alias == "champion"

    def limits(self) -> ApiLimits:
        """Request ranges and sizes for :func:`churnflow.serving.schemas.build_schemas`."""
        return ApiLimits(
            min_ts_ms=iso_day_ms(self.data_bounds[0], "data.min_valid_ts"),
            max_ts_ms=iso_day_ms(self.data_bounds[1], "data.max_valid_ts"),
            max_events_per_request=self.serve.max_events_per_request,
            max_batch_users=self.serve.max_batch_users,
            max_batch_events=self.serve.max_batch_events,
            max_string_length=self.serve.max_string_length,
            max_song_length_s=self.serve.max_song_length_s,
        )

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> ServingSettings:
        """Validate and read the metadata written by :func:`build_metadata` (MetadataError naming the key)."""
        version = metadata.get("metadata_version")
        if version != METADATA_VERSION:
            raise MetadataError(
                f"model metadata_version is {version!r}, this code reads {METADATA_VERSION}: "
                "re-run the package stage"
            )
        try:
            model = metadata["model"]
            registry = metadata["registry"]
            settings = cls(
                registered_model=str(model["registered_model"]),
                model_version=str(registry["served_version"]),
                model_alias=str(model["alias"]),
                model_name=str(model["model_name"]),
                model_sha256=str(model["model_sha256"]),
                feature_names=tuple(str(n) for n in metadata["feature_names"]),
                threshold=float(metadata["threshold"]),
                risk_bands=RiskBands.from_metadata(metadata),
                features=_structured(FeaturesConfig, metadata["features_config"], "features_config"),
                data_bounds=(
                    str(metadata["data_bounds"]["min_valid_ts"]),
                    str(metadata["data_bounds"]["max_valid_ts"]),
                ),
                serve=_structured(ServeConfig, metadata["serve_config"], "serve_config"),
                models_info={
                    "served": dict(model),
                    "evaluation": dict(metadata["evaluation"]),
                    "champion": registry.get("champion"),
                    "challenger": registry.get("challenger"),
                },
                warnings=tuple(str(w) for w in metadata["warnings"]),
            )
        except KeyError as exc:
            raise MetadataError(
                f"model metadata lacks key {exc.args[0]!r}: re-run the package stage"
            ) from exc
        except (TypeError, ValueError) as exc:
            raise MetadataError(f"model metadata holds a bad value: {exc}") from exc
        if not settings.feature_names:
            raise MetadataError("model metadata 'feature_names' is empty")
        if not 0.0 <= settings.threshold <= 1.0:
            raise MetadataError(f"model metadata 'threshold' {settings.threshold} is not in [0, 1]")
        settings.limits()  # the data bounds parse
        return settings


def build_metadata(
    model_meta: dict[str, Any],
    *,
    model: dict[str, Any],
    serve: ServeConfig,
    features: FeaturesConfig,
    data_bounds: tuple[str, str],
    evaluation: dict[str, Any],
    warnings: list[str],
    registry: dict[str, Any],
) -> dict[str, Any]:
    """BentoML model metadata (plain JSON types) from the served version's ``model_meta.json`` and config.

    ``model``: identity of the served version (registered_model, alias, model_name, model_sha256, data
    checks); ``data_bounds``: the run's ``data.min_valid_ts``/``max_valid_ts``; ``registry``: run-dependent
    facts (``served_version``, ``champion``, ``challenger``).
    Raises :class:`MetadataError` naming a key ``model_meta`` lacks.
    """
    for key in ("feature_names", "threshold", "model_name"):
        if key not in model_meta:
            raise MetadataError(f"model_meta.json lacks key {key!r}")
    bands = RiskBands.from_config(serve)
    return {
        "metadata_version": METADATA_VERSION,
        "model": dict(model),
        "feature_names": [str(n) for n in model_meta["feature_names"]],
        "threshold": float(model_meta["threshold"]),
        "calibration": model_meta.get("calibration"),
        "risk_bands": bands.to_dict(),
        "features_config": asdict(features),
        "data_bounds": {"min_valid_ts": data_bounds[0], "max_valid_ts": data_bounds[1]},
        "serve_config": asdict(serve),
        "evaluation": dict(evaluation),
        "warnings": list(warnings),
        "registry": dict(registry),
    }


def deterministic_part(metadata: dict[str, Any]) -> dict[str, Any]:
    """The metadata without its run-dependent ``registry`` block (what the model's version hash covers)."""
    return {k: v for k, v in metadata.items() if k != "registry"}


def check_feature_coverage(model_features: list[str], computed_features: list[str]) -> None:
    """Fail (MetadataError naming them) when the model needs features the feature config does not compute."""
    missing = [name for name in model_features if name not in set(computed_features)]
    if missing:
        raise MetadataError(
            f"the model needs {len(missing)} feature(s) the current features config does not compute, "
            f"e.g. {missing[:5]}: was it trained with other feature windows?"
        )
