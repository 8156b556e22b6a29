"""What the service needs to know, as carried by the packaged BentoML model's metadata.

The package stage writes it (:func:`build_metadata`); the service and ``churnflow score`` read it
(:meth:`ServingSettings.from_metadata`), so serving never consults the repository's ``params.yaml``.
Invariant: ``from_metadata(build_metadata(...))`` round-trips every field.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from omegaconf import OmegaConf

from churnflow.config.features import FeaturesConfig
from churnflow.config.serve import ServeConfig
from churnflow.serving.risk import RiskBands

#: Bumped on any incompatible change of the metadata layout.
METADATA_VERSION = 1
#: Key of the drift reference among the BentoML model's custom objects.
DRIFT_REFERENCE_OBJECT = "drift_reference"


class MetadataError(ValueError):
    """The packaged model's metadata lacks a key or holds a bad value (the message names it)."""


@dataclass(frozen=True)
class ServingSettings:
    """Model identity, decision rule and request limits for one packaged model."""

    registered_model: str
    model_version: str
    model_alias: str
    model_name: str
    feature_names: tuple[str, ...]
    threshold: float
    risk_bands: RiskBands
    features: FeaturesConfig
    api_keys_env: str
    rate_limit_per_minute: int
    max_events_per_request: int

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> ServingSettings:
        """Validate and read the metadata written by :func:`build_metadata`."""
        version = metadata.get("metadata_version")
        if version != METADATA_VERSION:
            raise MetadataError(
                f"model metadata_version is {version!r}, this code reads {METADATA_VERSION}: "
                "re-run the package stage"
            )
        try:
            features = OmegaConf.to_object(
                OmegaConf.merge(OmegaConf.structured(FeaturesConfig), metadata["features_config"])
            )
            assert isinstance(features, FeaturesConfig)
            return cls(
                registered_model=str(metadata["registered_model"]),
                model_version=str(metadata["model_version"]),
                model_alias=str(metadata["model_alias"]),
                model_name=str(metadata["model_name"]),
                feature_names=tuple(str(n) for n in metadata["feature_names"]),
                threshold=float(metadata["threshold"]),
                risk_bands=RiskBands.from_metadata(metadata),
                features=features,
                api_keys_env=str(metadata["api_keys_env"]),
                rate_limit_per_minute=int(metadata["rate_limit_per_minute"]),
                max_events_per_request=int(metadata["max_events_per_request"]),
            )
        except KeyError as exc:
            raise MetadataError(
                f"model metadata lacks key {exc.args[0]!r}: re-run the package stage"
            ) from exc
        except (TypeError, ValueError) as exc:
            raise MetadataError(f"model metadata holds a bad value: {exc}") from exc


def build_metadata(
    model_meta: dict[str, Any],
    *,
    registered_model: str,
    model_version: str,
    model_alias: str,
    serve: ServeConfig,
    features: FeaturesConfig,
) -> dict[str, Any]:
    """BentoML model metadata from the train stage's ``model_meta.json`` plus config (plain JSON types only).

    Raises :class:`MetadataError` naming a key ``model_meta`` lacks.
    """
    for key in ("feature_names", "threshold", "model_name"):
        if key not in model_meta:
            raise MetadataError(f"model_meta.json lacks key {key!r}")
    bands = RiskBands.from_config(serve)
    return {
        "metadata_version": METADATA_VERSION,
        "registered_model": registered_model,
        "model_version": str(model_version),
        "model_alias": model_alias,
        "model_name": str(model_meta["model_name"]),
        "feature_names": [str(n) for n in model_meta["feature_names"]],
        "threshold": float(model_meta["threshold"]),
        "risk_bands": bands.to_dict(),
        "features_config": asdict(features),
        "api_keys_env": serve.api_keys_env,
        "rate_limit_per_minute": int(serve.rate_limit_per_minute),
        "max_events_per_request": int(serve.max_events_per_request),
    }


def check_feature_coverage(model_features: list[str], computed_features: list[str]) -> None:
    """Fail (MetadataError naming them) when the model needs features the feature config does not compute."""
    missing = [name for name in model_features if name not in set(computed_features)]
    if missing:
        raise MetadataError(
            f"the model needs {len(missing)} feature(s) the current features config does not compute, "
            f"e.g. {missing[:5]}: was it trained with other feature windows?"
        )
