"""The BentoML service: ``POST /predict`` scores one user's raw Sparkify events with the packaged model.

Run: ``bentoml serve churnflow.serving.service:ChurnService --host 127.0.0.1 --port 3000``.
The model is the BentoML store entry ``$CHURNFLOW_BENTO_MODEL`` (default ``churn:latest``, written by the
package stage); everything the service needs (feature names, threshold, risk bands, feature windows,
auth env var, limits) comes from that model's metadata, plus API keys from the environment.
Built in: ``/metrics`` (Prometheus), ``/livez``, ``/readyz``, ``/docs.json``.
"""

from __future__ import annotations

import logging
import os
import uuid
from datetime import datetime
from typing import Any

import bentoml
from starlette.responses import JSONResponse

from churnflow.config.serve import ServeConfig
from churnflow.serving.auth import ApiKeyMiddleware
from churnflow.serving.schemas import PredictRequest, PredictResponse, cutoff_to_ms, ms_to_iso
from churnflow.serving.scoring import RequestError, score_user_records
from churnflow.serving.settings import DRIFT_REFERENCE_OBJECT, ServingSettings

logger = logging.getLogger(__name__)

#: Environment variable naming the BentoML model tag to serve.
MODEL_TAG_ENV = "CHURNFLOW_BENTO_MODEL"


def model_tag_from_env() -> str:
    """``$CHURNFLOW_BENTO_MODEL`` or ``<ServeConfig.bento_model_name>:latest``."""
    return os.environ.get(MODEL_TAG_ENV) or f"{ServeConfig().bento_model_name}:latest"


def _resolve_model(tag: str) -> tuple[bentoml.models.BentoModel, ServingSettings]:
    """The store reference and its validated settings; a clear error when the package stage has not run."""
    ref = bentoml.models.BentoModel(tag)
    stored = ref.stored
    if stored is None:
        home = os.environ.get("BENTOML_HOME", "~/bentoml")
        raise RuntimeError(
            f"BentoML model {tag!r} is not in the store at BENTOML_HOME={home}: run the package stage "
            "(`dvc repro package`) or set $CHURNFLOW_BENTO_MODEL to a stored tag"
        )
    return ref, ServingSettings.from_metadata(dict(stored.info.metadata))


_MODEL_REF, SETTINGS = _resolve_model(model_tag_from_env())

PREDICTIONS = bentoml.metrics.Counter(
    name="churnflow_predictions",
    documentation="Predictions served, by risk level and model alias",
    labelnames=["risk_level", "model_alias"],
)
PROBABILITY = bentoml.metrics.Histogram(
    name="churnflow_churn_probability",
    documentation="Distribution of served churn probabilities",
    labelnames=["model_alias"],
    buckets=(0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0),
)


@bentoml.service(name="churn_service", traffic={"timeout": 60})
class ChurnService:
    """Churn scores for raw event histories; settings from the Bento model's metadata."""

    bento_model = _MODEL_REF

    def __init__(self) -> None:
        """Load the MLflow pyfunc and the drift reference from the BentoML store."""
        self.settings = SETTINGS
        self.model = bentoml.mlflow.load_model(self.bento_model)
        self.drift_reference: dict[str, Any] | None = self.bento_model.custom_objects.get(
            DRIFT_REFERENCE_OBJECT
        )
        logger.info(
            "serving %s version %s (alias %s): %d features, threshold %.4f",
            self.settings.registered_model,
            self.settings.model_version,
            self.settings.model_alias,
            len(self.settings.feature_names),
            self.settings.threshold,
        )
        if self.settings.model_alias != "champion":
            logger.warning("the served model is the %r, NOT a promoted champion", self.settings.model_alias)

    @bentoml.api(route="/predict", input_spec=PredictRequest, output_spec=PredictResponse)
    def predict(
        self, events: list[dict[str, Any]], cutoff: int | datetime | None = None
    ) -> PredictResponse | JSONResponse:
        """Score one user's events → :class:`PredictResponse` (or a 4xx JSON naming the bad field)."""
        try:
            score = score_user_records(events, cutoff_to_ms(cutoff), self.model, self.settings)
        except RequestError as exc:
            return JSONResponse(exc.to_dict(), status_code=exc.status)
        PREDICTIONS.labels(risk_level=score.risk_level, model_alias=self.settings.model_alias).inc()
        PROBABILITY.labels(model_alias=self.settings.model_alias).observe(score.churn_probability)
        return PredictResponse(
            user_id=score.user_id,
            churn_probability=score.churn_probability,
            churn_prediction=score.churn_prediction,
            risk_level=score.risk_level,  # type: ignore[arg-type]
            prediction_id=uuid.uuid4().hex,
            model_version=self.settings.model_version,
            model_alias=self.settings.model_alias,
            n_events=score.n_events,
            cutoff=ms_to_iso(score.cutoff_ms),
            feature_count=score.feature_count,
        )


ChurnService.add_asgi_middleware(
    ApiKeyMiddleware,
    api_keys_env=SETTINGS.api_keys_env,
    rate_limit_per_minute=SETTINGS.rate_limit_per_minute,
)
