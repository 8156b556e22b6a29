"""`churnflow score`: batch scores of a JSON-lines / Parquet events file with a real packaged model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from churnflow.cli import app
from churnflow.features import feature_names
from churnflow.serving.loading import load_served_model
from churnflow.serving.scoring import Scorer, StageTimer
from tests.serving_helpers import package, register, serving_config, synthetic_user_events, train_tiny_model

pytestmark = pytest.mark.slow
USERS = ("11", "12", "13", "14")


@pytest.fixture(scope="module")
def scoring_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, dict[str, Any]]]:
    """(bento tag, events file, events by user)."""
    cfg = serving_config("score_churn")
    root = tmp_path_factory.mktemp("score")
    train_tiny_model(feature_names(cfg.features), root / "model")
    register(cfg, root / "model", "champion")
    record = package(cfg, root / "model").record
    by_user = {u: synthetic_user_events(u, seed=5, n_events=40 + 10 * i) for i, u in enumerate(USERS)}
    events_path = root / "events.json"
    lines = [json.dumps(e) for u in USERS for e in by_user[u]]
    events_path.write_text("\n".join(lines) + "\n")
    yield record.bento_model_tag, events_path, by_user


def test_score_writes_csv_and_parquet_matching_the_service(
    scoring_setup: tuple[str, Path, dict[str, Any]], tmp_path: Path
) -> None:
    tag, events_path, by_user = scoring_setup
    runner = CliRunner()
    outs = {}
    for suffix in (".csv", ".parquet"):
        out = tmp_path / f"scores{suffix}"
        res = runner.invoke(app, ["score", "--events", str(events_path), "--out", str(out), "--model", tag])
        assert res.exit_code == 0, res.output
        outs[suffix] = pl.read_csv(out) if suffix == ".csv" else pl.read_parquet(out)
    csv, parquet = outs[".csv"], outs[".parquet"]
    expected_cols = ["user_id", "cutoff", "churn_probability", "churn_prediction", "risk_level"]
    assert csv.columns == parquet.columns == expected_cols
    assert parquet.get_column("user_id").to_list() == list(USERS)
    assert csv.get_column("user_id").cast(pl.String).to_list() == list(USERS)
    assert csv.get_column("churn_probability").to_list() == pytest.approx(
        parquet.get_column("churn_probability").to_list(), abs=1e-12
    )
    # batch (offline features) and online (the /predict path) agree for every user
    served = load_served_model(tag)
    scorer = Scorer(served.model, served.settings)
    for row in parquet.iter_rows(named=True):
        body = json.dumps({"events": by_user[row["user_id"]]}).encode()
        online, _ = scorer.predict(body, StageTimer())
        assert row["churn_probability"] == pytest.approx(online.churn_probability, abs=1e-9)
        assert (row["churn_prediction"], row["risk_level"]) == (online.churn_prediction, online.risk_level)
        assert row["cutoff"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" == online.cutoff


def test_score_is_deterministic_and_reads_parquet(
    scoring_setup: tuple[str, Path, dict[str, Any]], tmp_path: Path
) -> None:
    tag, events_path, _ = scoring_setup
    runner = CliRunner()
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    for out in (first, second):
        assert (
            runner.invoke(
                app, ["score", "--events", str(events_path), "--out", str(out), "--model", tag]
            ).exit_code
            == 0
        )
    assert first.read_bytes() == second.read_bytes()
    raw = pl.read_ndjson(events_path, infer_schema_length=None)
    parquet_in = tmp_path / "events.parquet"
    raw.write_parquet(parquet_in)
    via_parquet = tmp_path / "c.csv"
    res = runner.invoke(
        app, ["score", "--events", str(parquet_in), "--out", str(via_parquet), "--model", tag]
    )
    assert res.exit_code == 0, res.output
    assert via_parquet.read_bytes() == first.read_bytes()


def test_score_rejects_bad_arguments(scoring_setup: tuple[str, Path, dict[str, Any]], tmp_path: Path) -> None:
    _, events_path, _ = scoring_setup
    runner = CliRunner(env={"COLUMNS": "400"})
    bad_suffix = runner.invoke(app, ["score", "--events", str(events_path), "--out", str(tmp_path / "x.txt")])
    assert bad_suffix.exit_code != 0 and ".csv or .parquet" in bad_suffix.output
    missing = runner.invoke(
        app, ["score", "--events", str(tmp_path / "nope.json"), "--out", str(tmp_path / "x.csv")]
    )
    assert missing.exit_code != 0 and "not found" in missing.output
    env = {"COLUMNS": "400", "CHURNFLOW_BENTO_MODEL": "no_such_model:latest"}
    unknown = runner.invoke(
        app, ["score", "--events", str(events_path), "--out", str(tmp_path / "x.csv")], env=env
    )
    assert unknown.exit_code == 1 and "package stage" in unknown.output and "no_such_model" in unknown.output
