"""The MLflow pyfunc wrapper: ``predict`` returns churn probabilities (not class labels).

The logged MLflow model carries the whole ``artifacts/model/`` folder as the artifact ``model_dir``;
``load_context`` rebuilds the :class:`~churnflow.models.artifact.ChurnModel` from it. BentoML's
``bentoml.mlflow.import_model(name, "models:/churn@champion")`` + ``load_model(...)`` therefore yields an
object whose ``predict(frame)`` returns a frame with one float column ``churn_probability``.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd

from churnflow.models.artifact import ChurnModel, load_churn_model

MODEL_DIR_ARTIFACT = "model_dir"
OUTPUT_COLUMN = "churn_probability"


class ChurnPyfunc(mlflow.pyfunc.PythonModel):
    """``predict(context, model_input: pd.DataFrame) -> pd.DataFrame[churn_probability]``.

    ``model_input`` holds at least the model's feature columns (float); extra columns are ignored.
    """

    def __init__(self) -> None:
        self._model: ChurnModel | None = None

    def load_context(self, context: Any) -> None:
        """Load the churn model folder shipped as the ``model_dir`` artifact."""
        self._model = load_churn_model(context.artifacts[MODEL_DIR_ARTIFACT])

    @property
    def churn_model(self) -> ChurnModel:
        """The loaded :class:`ChurnModel` (after ``load_context``)."""
        if self._model is None:
            raise RuntimeError("ChurnPyfunc used before load_context()")
        return self._model

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """One row per input row: ``churn_probability`` in [0, 1]."""
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        probs = self.churn_model.predict_proba(frame)
        return pd.DataFrame({OUTPUT_COLUMN: probs}, index=frame.index)
