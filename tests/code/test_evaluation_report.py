"""evaluate_model + render_html on a trained synthetic model: contract keys, oracle block, HTML page."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from churnflow.config import Config
from churnflow.evaluation.evaluate import check_split_matches, evaluate_model
from churnflow.evaluation.report import render_html
from churnflow.models.training import describe_model, join_features_labels, make_split, train_final
from tests.model.synthetic import make_tables


@pytest.fixture(scope="module")
def trained():  # type: ignore[no-untyped-def]
    features, labels = make_tables(200, 5, seed=2)
    data = join_features_labels(features, labels)
    cfg = Config()
    cfg.model.fixed = {
        "objective": "binary",
        "n_estimators": 60,
        "verbose": -1,
        "n_jobs": 1,
        "deterministic": True,
    }
    cfg.evaluate.bootstrap_samples = 100
    cfg.evaluate.shap_sample = 50
    split = make_split(data, cfg)
    result = train_final(data, cfg, {"num_leaves": 7}, split)
    result.model.meta = describe_model(result, cfg, {"features_sha256": "x"})
    return data, split, cfg, result


def test_evaluation_with_oracle_and_html(trained) -> None:  # type: ignore[no-untyped-def]
    data, split, cfg, result = trained
    y = data.target(split.test)
    oracle = np.clip(y * 0.8 + 0.1, 0, 1)  # a near-perfect oracle
    ev = evaluate_model(result.model, data, split, cfg, model_version="7", oracle_p=oracle)
    m = ev.metrics
    assert set(m) == {"test", "business", "oracle", "n_train", "n_test", "model", "model_version"}
    assert m["oracle"]["roc_auc"] == pytest.approx(1.0)
    assert m["oracle"]["ratio"] == pytest.approx(m["test"]["roc_auc"])
    assert m["oracle"]["goal_met"] is False and any("MISSES" in msg for msg in ev.messages)
    assert m["test"]["roc_auc"] == pytest.approx(result.test_metrics["roc_auc"])
    assert ev.tables["confusion"].height == int(split.test.sum())
    assert ev.importance is not None and ev.importance["feature"][0].startswith("engagement__")
    assert "noise__a" not in ev.importance["feature"].head(2).to_list()
    page = render_html(
        ev,
        result.model.meta,
        {"registered_model": "churn", "version": "7", "aliases": ["challenger"], "reason": "r"},
    )
    assert page.startswith("<!DOCTYPE html>") and page.count("data:image/png;base64,") == len(ev.figures) >= 8
    assert "model / oracle AUC" in page and "churn v7" in page
    again = evaluate_model(
        result.model, data, split, cfg, model_version="7", oracle_p=oracle, with_figures=False
    )
    assert again.metrics == m


def test_model_trained_on_other_data_is_refused(trained) -> None:  # type: ignore[no-untyped-def]
    data, split, cfg, result = trained
    other = dataclasses.replace(
        result.model, meta={**result.model.meta, "test_cutoffs": ["1999-01-01T00:00:00"]}
    )
    with pytest.raises(ValueError, match="trained on other data"):
        check_split_matches(other, split)
    with pytest.raises(ValueError, match="oracle probabilities"):
        evaluate_model(result.model, data, split, cfg, oracle_p=np.zeros(3), with_figures=False)
