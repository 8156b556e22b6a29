"""DVC stage `evaluate`: purged out-of-time test views, oracle, plots, HTML report; MLflow log and promotion.

Writes only deterministic files (DVC outputs); the promotion decision and the run-dependent record go to
MLflow (aliases and version tags) and to the console.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import typer

from churnflow.config import load_config
from churnflow.evaluation.evaluate import (
    HEADLINE_VIEW,
    LeakAlarm,
    check_split_matches,
    evaluate_model,
)
from churnflow.evaluation.ground_truth import ground_truth_for
from churnflow.evaluation.metrics import paired_comparison
from churnflow.evaluation.report import render_html
from churnflow.models import load_churn_model
from churnflow.models.artifact import model_dir_sha256
from churnflow.models.training import join_features_labels, make_split
from churnflow.utils.io import atomic_dir, write_json, write_text


def main(
    features: Path = typer.Option(..., help="features table (Parquet)"),
    labels: Path = typer.Option(..., help="labels table (Parquet)"),
    model_dir: Path = typer.Option(..., help="model folder from the train stage"),
    raw: Path = typer.Option(
        ..., help="raw data folder (its _truth/ sidecar gives the oracle, if simulated)"
    ),
    metrics: Path = typer.Option(..., help="output: metrics JSON (dvc metrics)"),
    plots: Path = typer.Option(..., help="output: folder of plot tables (dvc plots)"),
    figures: Path = typer.Option(..., help="output: folder of PNG figures"),
    html: Path = typer.Option(..., help="output: self-contained HTML report"),
    params: Path = typer.Option(Path("params.yaml"), help="composed configuration"),
) -> None:
    """Evaluate the trained model on the latest cutoffs (never tuned on), report, then apply the gates."""
    import mlflow

    from churnflow.models.tracking import (
        apply_promotion,
        configure_mlflow,
        current_champion,
        decide_promotion,
        find_version,
        load_registered_model,
    )

    cfg = load_config(params)
    model = load_churn_model(model_dir)
    data = join_features_labels(pl.read_parquet(features), pl.read_parquet(labels))
    split = make_split(data, cfg)
    check_split_matches(model, split)
    truth = ground_truth_for(raw, data, split, cfg, progress=True)
    uri = configure_mlflow(cfg.tracking)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = cfg.tracking.registered_model
    version = find_version(client, name, model_dir_sha256(model_dir))
    try:
        result = evaluate_model(model, data, split, cfg, truth=truth)
    except LeakAlarm:
        if version is not None:
            client.set_model_version_tag(name, version.version, "promotion", "leak_alarm")
        raise
    write_json(metrics, result.metrics)
    with atomic_dir(plots) as tmp:
        for table_name, table in result.tables.items():
            table.write_csv(tmp / f"{table_name}.csv", float_precision=6)
    with atomic_dir(figures) as tmp:
        for fig_name, png in result.figures.items():
            (tmp / f"{fig_name}.png").write_bytes(png)
    write_text(html, render_html(result, model.meta))
    for message in result.messages:
        typer.echo(message)
    if version is None:
        typer.echo(
            f"WARNING: {model_dir} is not a registered version of {name!r} in {uri} (was the MLflow "
            "database removed after training?): nothing promoted; `dvc repro -f train` re-registers it",
            err=True,
        )
        return
    known = split.known_customers[split.test]
    y_known = data.target(split.test)[known]
    champion = current_champion(client, name)
    comparison, comparable = None, True
    if champion is not None and champion != version.version:
        champ = load_registered_model(name, champion)
        missing = [f for f in champ.feature_names if f not in data.frame.columns]
        comparable = not missing
        if comparable:
            assert result.test_scores is not None
            x = data.frame.filter(pl.Series(split.test)).filter(pl.Series(known)).select(champ.feature_names)
            p_champ = champ.predict_proba(x)
            p_new = result.test_scores[known]
            comparison = paired_comparison(
                y_known, p_new, p_champ, result.bootstrap_weights[HEADLINE_VIEW], cfg.train.promotion_alpha
            )
    if champion == version.version:
        typer.echo(f"{name} v{version.version} is already @champion")
        return
    ratio = result.metrics.get("oracle", {}).get(HEADLINE_VIEW, {}).get("model_over_oracle")
    decision = decide_promotion(
        champion_version=champion,
        comparison=comparison,
        oracle_ratio=None if ratio is None or not np.isfinite(ratio) else float(ratio),
        leak_alarm=False,
        train=cfg.train,
        comparable=comparable,
    )
    apply_promotion(client, name, version.version, decision)
    from churnflow.evaluation.tracking import log_evaluation

    extra = {}
    if comparison is not None:
        extra = {
            "eval_vs_champion_auc_difference": comparison["difference"],
            "eval_vs_champion_p_not_better": comparison["p_a_not_better"],
        }
    outputs = {"metrics": metrics, "html": html, "plots": plots, "figures": figures}
    log_evaluation(version.run_id, cfg, result, outputs, extra)
    verdict = "PROMOTED to @champion" if decision.promote else "NOT promoted"
    typer.echo(f"{name} v{version.version}: {verdict} — {decision.reason}")


if __name__ == "__main__":
    typer.run(main)
