"""Data expectations on a real feature table: simulator (tiny) → loader → labels → features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from churnflow.config import Config
from churnflow.features import compute_features, compute_features_online, feature_names, feature_registry


@pytest.fixture(scope="module")
def pipeline(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, Config]:
    from churnflow.data.load import load_events
    from churnflow.labels import build_labels
    from churnflow.simulate import simulate_to_dir

    cfg = Config()
    raw = tmp_path_factory.mktemp("raw")
    simulate_to_dir("tiny", 7, raw)
    events = load_events([Path(raw)], cfg.data).events
    labels = build_labels(events, cfg.labels).labels
    if labels.height == 0:
        pytest.skip("the tiny preset produced no labelled (user, cutoff) rows")
    table = compute_features(events, labels.select("user_id", "cutoff"), cfg.features)
    return events, labels, table, cfg


def test_one_feature_row_per_label_row(pipeline: tuple[pl.DataFrame, ...]) -> None:
    _, labels, table, cfg = pipeline
    assert table.select("user_id", "cutoff").equals(labels.select("user_id", "cutoff"))
    assert table.columns[2:] == feature_names(cfg.features)


def test_values_are_finite_and_in_range(pipeline: tuple[pl.DataFrame, ...]) -> None:
    _, _, table, cfg = pipeline
    feats = table.select(feature_names(cfg.features))
    arr = feats.to_numpy()
    assert not np.isinf(arr).any()
    for spec in feature_registry(cfg.features):
        col = feats[spec.name].drop_nulls()
        name = spec.name.split("__", 1)[1]
        if (
            name.endswith("_share")
            or "_share_" in name
            or name.startswith(("ua_", "region_", "is_", "gender_"))
        ):
            assert col.is_between(0.0, 1.0).all(), spec.name
        if (
            spec.name.startswith(("activity__events", "activity__songs_", "friction__errors_"))
            and "per" not in name
        ):
            assert (col >= 0).all(), spec.name
        if name.startswith("days_since") or name == "tenure_days":
            assert (col >= 0).all(), spec.name


def test_windows_nest_and_labelled_users_were_active(pipeline: tuple[pl.DataFrame, ...]) -> None:
    _, _, table, _ = pipeline
    for m in ("events", "songs", "sessions", "active_days"):
        w7, w14, w28, all_ = (table[f"activity__{m}_{w}"] for w in ("7d", "14d", "28d", "all"))
        assert ((w7 <= w14) & (w14 <= w28) & (w28 <= all_)).all(), m
    assert (table["activity__active_days_7d"] <= 7).all()
    assert (table["activity__events_all"] > 0).mean() > 0.9  # labelled users have history before T
    assert table["content__distinct_songs"].le(table["activity__songs_all"]).all()
    os_cols = [c for c in table.columns if c.startswith("content__ua_os_")]
    assert table.select(pl.sum_horizontal(os_cols)).to_series().le(1).all()


def test_online_matches_the_table_on_real_data(pipeline: tuple[pl.DataFrame, ...]) -> None:
    events, _, table, cfg = pipeline
    for row in table.sample(n=min(15, table.height), seed=1).iter_rows(named=True):
        online = compute_features_online(
            events.filter(pl.col("user_id") == row["user_id"]), row["cutoff"], cfg.features
        )
        for name, value in online.items():
            assert (row[name] is None and np.isnan(value)) or row[name] == value, name
