"""Where a check's reference and model come from: the served BentoML model (default) or files.

The package stage stores the drift reference beside the model in the BentoML store, so by default
``churnflow monitor`` checks new data against exactly what is being served (model, feature windows and
reference travel together); ``--reference`` + ``--model-dir`` point at files instead (e.g. a run's
``artifacts/``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churnflow.config import Config, FeaturesConfig
from churnflow.monitoring.profile import DriftInputError
from churnflow.monitoring.reference import validate_reference
from churnflow.monitoring.windows import ProbabilityModel


@dataclass(frozen=True)
class MonitorInputs:
    """The reference, a model scoring feature frames, the feature config it was trained with, and where
    they came from (a sentence for the report)."""

    reference: dict[str, Any]
    model: ProbabilityModel
    features: FeaturesConfig
    source: str


def load_monitor_inputs(
    cfg: Config,
    *,
    model_tag: str | None = None,
    reference: Mapping[str, Any] | None = None,
    model_dir: Path | None = None,
) -> MonitorInputs:
    """Files when ``reference`` and ``model_dir`` are given, else the BentoML store entry ``model_tag``
    (default ``$CHURNFLOW_BENTO_MODEL`` or ``<serve.bento_model_name>:latest``).

    Raises :class:`DriftInputError` (bad or missing reference, feature mismatch) or the serving loader's
    ``ModelLoadError`` (a ``RuntimeError`` naming the tag).
    """
    if reference is not None and model_dir is not None:
        from churnflow.models import load_churn_model

        model = load_churn_model(model_dir)
        ref, features, source = dict(reference), cfg.features, f"files: model {model_dir}"
    else:
        from churnflow.serving.loading import load_served_model, model_tag_from_env

        served = load_served_model(model_tag or model_tag_from_env(cfg.serve.bento_model_name))
        if served.drift_reference is None:
            raise DriftInputError(
                f"BentoML model {served.tag!r} carries no drift reference: re-run the package stage"
            )
        model, ref, features = served.model, served.drift_reference, served.settings.features
        source = f"served model {served.tag} (BentoML store)"
    validate_reference(ref)
    missing = [n for n in ref["feature_names"] if n not in model.feature_names]  # type: ignore[attr-defined]
    if missing:
        raise DriftInputError(
            f"drift reference watches {len(missing)} feature(s) the model lacks, e.g. {missing[:3]}"
        )
    return MonitorInputs(reference=ref, model=model, features=features, source=source)
