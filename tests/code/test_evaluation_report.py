"""evaluate_model + render_html on a trained synthetic model: views, oracle block, leak alarm, HTML page."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from churnflow.config import Config
from churnflow.evaluation.evaluate import GroundTruth, LeakAlarm, check_split_matches, evaluate_model
from churnflow.evaluation.report import render_html
from churnflow.models.training import describe_model, join_features_labels, make_split, train_final
from tests.model.synthetic import make_tables


@pytest.fixture(scope="module")
def trained():  # type: ignore[no-untyped-def]
    features, labels = make_tables(300, 10, seed=2)
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


def _truth(data, split, oracle: np.ndarray) -> GroundTruth:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    return GroundTruth(
        oracle_p=oracle,
        oracle_se=np.full(len(oracle), 0.01),
        n_draws=100,
        coverage="all test rows",
        latent_names=["latent__x"],
        latent_dev=rng.normal(size=(int(split.development.sum()), 1)),
        latent_test=rng.normal(size=(int(split.test.sum()), 1)),
    )


def test_evaluation_views_oracle_and_html(trained) -> None:  # type: ignore[no-untyped-def]
    data, split, cfg, result = trained
    y = data.target(split.test)
    oracle = np.clip(y * 0.8 + 0.1, 0, 1)  # a near-perfect oracle
    ev = evaluate_model(result.model, data, split, cfg, truth=_truth(data, split, oracle))
    m = ev.metrics
    assert {"test", "oracle", "latent_model", "business", "validation", "split", "calibration"} <= set(m)
    assert set(m["test"]) == {"known_customers", "new_users", "all"}
    known = m["test"]["known_customers"]
    assert known["n_rows"] == int(split.known_customers.sum()) and known["roc_auc"] > 0.7
    assert m["test"]["new_users"]["n_rows"] == int(split.new_users.sum()) > 0
    o = m["oracle"]["known_customers"]
    assert o["roc_auc"] == pytest.approx(1.0)
    assert o["model_over_oracle"] == pytest.approx(known["roc_auc"])
    assert o["model_over_oracle_ci"][0] <= o["model_over_oracle"] <= o["model_over_oracle_ci"][1]
    assert m["oracle"]["goal_met"] is False and any("MISSES" in msg for msg in ev.messages)
    assert len(m["oracle"]["calibration"]) == cfg.train.n_test_cutoffs  # one row per test cutoff
    assert "best_share" not in m["business"] and "validation_best_share" in m["business"]
    assert ev.tables["confusion"].height == int(split.known_customers.sum())
    assert ev.importance is not None and ev.importance["feature"][0].startswith("engagement__")
    assert "noise__a" not in ev.importance["feature"].head(2).to_list()
    page = render_html(ev, result.model.meta)
    assert page.startswith("<!DOCTYPE html>") and page.count("data:image/png;base64,") == len(ev.figures) >= 9
    assert "known customers" in page and "oracle" in page and not re.search(r"(src|href)=[\"']?https?:", page)
    again = evaluate_model(
        result.model, data, split, cfg, truth=_truth(data, split, oracle), with_figures=False
    )
    assert again.metrics == m


def test_a_model_that_beats_the_oracle_stops_the_evaluation(trained) -> None:  # type: ignore[no-untyped-def]
    data, split, cfg, result = trained
    noise = np.random.default_rng(1).random(int(split.test.sum()))  # an "oracle" worse than the model
    with pytest.raises(LeakAlarm, match="beats the simulator's oracle") as err:
        evaluate_model(result.model, data, split, cfg, truth=_truth(data, split, noise), with_figures=False)
    assert "known customers" in str(err.value) and "Likely causes" in str(err.value)
    cfg_off = dataclasses.replace(cfg, evaluate=dataclasses.replace(cfg.evaluate, leak_alarm=False))
    ev = evaluate_model(
        result.model, data, split, cfg_off, truth=_truth(data, split, noise), with_figures=False
    )
    assert ev.metrics["oracle"]["known_customers"]["model_minus_oracle_ci"][0] > 0


def test_model_trained_on_other_data_is_refused(trained) -> None:  # type: ignore[no-untyped-def]
    _, split, _, result = trained
    other = dataclasses.replace(
        result.model, meta={**result.model.meta, "test_cutoffs": ["1999-01-01T00:00:00"]}
    )
    with pytest.raises(ValueError, match="trained on other data"):
        check_split_matches(other, split)
