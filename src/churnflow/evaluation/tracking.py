"""Log an evaluation to the MLflow run of the evaluated model version (``eval_*`` metrics + artifacts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from churnflow.config import Config
from churnflow.evaluation.evaluate import Evaluation


def flat_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Numeric leaves of metrics.json as ``eval_<block>_<key>`` (CI bounds as ``_lo``/``_hi``)."""
    out: dict[str, float] = {}
    for block in ("test", "business", "oracle"):
        for key, value in metrics.get(block, {}).items():
            name = f"eval_{block}_{key}"
            if isinstance(value, bool | int | float):
                out[name] = float(value)
            elif isinstance(value, list) and len(value) == 2:
                out[f"{name}_lo"], out[f"{name}_hi"] = float(value[0]), float(value[1])
    return out


def log_evaluation(
    registry: dict[str, Any],
    cfg: Config,
    evaluation: Evaluation,
    metrics: Path,
    plots: Path,
    figures: Path,
    html: Path,
) -> None:
    """Append the evaluation to the model's training run (``registry['run_id']``)."""
    import mlflow

    from churnflow.models.tracking import configure_mlflow

    configure_mlflow(cfg.tracking)
    with mlflow.start_run(run_id=registry["run_id"]):
        mlflow.log_metrics(flat_metrics(evaluation.metrics))
        mlflow.log_artifact(str(metrics), "evaluation")
        mlflow.log_artifact(str(html), "evaluation")
        mlflow.log_artifacts(str(plots), "evaluation/plots")
        mlflow.log_artifacts(str(figures), "evaluation/figures")
        mlflow.log_text(evaluation.classification_report, "evaluation/classification_report.txt")
