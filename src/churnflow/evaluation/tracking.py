"""Log an evaluation to the MLflow run of the evaluated model version (``eval_*`` metrics + artifacts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from churnflow.config import Config
from churnflow.evaluation.evaluate import Evaluation

LOGGED_BLOCKS: tuple[str, ...] = ("test", "oracle", "latent_model", "business", "calibration")


def flat_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Numeric leaves of metrics.json as ``eval_<block>_<path>`` (intervals as ``_lo``/``_hi``)."""
    out: dict[str, float] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f"{prefix}_{key}", sub)
        elif isinstance(value, bool | int | float):
            out[prefix] = float(value)
        elif isinstance(value, list) and len(value) == 2 and all(isinstance(v, int | float) for v in value):
            out[f"{prefix}_lo"], out[f"{prefix}_hi"] = float(value[0]), float(value[1])

    for block in LOGGED_BLOCKS:
        walk(f"eval_{block}", metrics.get(block, {}))
    return out


def log_evaluation(
    run_id: str,
    cfg: Config,
    evaluation: Evaluation,
    outputs: dict[str, Path],
    extra_metrics: dict[str, float] | None = None,
) -> None:
    """Append the evaluation (metrics, report files, plot tables, figures) to the model's training run."""
    import mlflow

    from churnflow.models.tracking import configure_mlflow

    configure_mlflow(cfg.tracking)
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics({**flat_metrics(evaluation.metrics), **(extra_metrics or {})})
        for name in ("metrics", "html"):
            mlflow.log_artifact(str(outputs[name]), "evaluation")
        mlflow.log_artifacts(str(outputs["plots"]), "evaluation/plots")
        mlflow.log_artifacts(str(outputs["figures"]), "evaluation/figures")
        mlflow.log_text(evaluation.classification_report, "evaluation/classification_report.txt")
