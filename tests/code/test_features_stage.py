"""The features stage end to end on synthetic data: table + catalogue, byte-identical reruns, engine check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from churnflow.config import FeaturesConfig
from churnflow.features import feature_names
from tests.code.test_features_synthetic import make_events, weekly_cutoffs


def _run_stage(repo_root: Path, events: Path, labels: Path, out: Path) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        str(repo_root / "stages" / "features.py"),
        "--events", str(events),
        "--labels", str(labels),
        "--features", str(out / "features.parquet"),
        "--catalog", str(out / "feature_catalog.md"),
        "--params", str(repo_root / "params.yaml"),
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=repo_root)


def test_stage_writes_table_and_catalogue_deterministically(repo_root: Path, tmp_path: Path) -> None:
    events = make_events(n_users=4, events_per_user=150, seed=11)
    labels = weekly_cutoffs(events).with_columns(label=pl.lit(0, pl.Int8))
    events.write_parquet(tmp_path / "events.parquet")
    labels.write_parquet(tmp_path / "labels.parquet")
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run
        proc = _run_stage(repo_root, tmp_path / "events.parquet", tmp_path / "labels.parquet", out)
        assert proc.returncode == 0, proc.stderr
        outs.append(out)
    table = pl.read_parquet(outs[0] / "features.parquet")
    assert table.height == labels.height
    assert table.columns == ["user_id", "cutoff", *feature_names(FeaturesConfig())]
    catalog = (outs[0] / "feature_catalog.md").read_text()
    assert "# Feature catalogue" in catalog and "`activity__songs_7d`" in catalog
    assert (outs[0] / "features.parquet").read_bytes() == (outs[1] / "features.parquet").read_bytes()
    assert catalog == (outs[1] / "feature_catalog.md").read_text()


def test_unknown_engine_is_refused_when_the_config_is_built() -> None:
    with pytest.raises(ValueError, match=r"features\.engine"):
        FeaturesConfig(engine="duckdb")
    with pytest.raises(ValueError, match=r"features\.spark_partitions"):
        FeaturesConfig(spark_partitions=0)
