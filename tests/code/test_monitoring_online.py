"""RollingDrift: the serving path's rolling score on the batch monitor's fixed bins."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from churnflow.config import EvaluateConfig, MonitorConfig
from churnflow.monitoring.online import RollingDrift
from churnflow.monitoring.profile import code_matrix
from churnflow.monitoring.reference import build_reference, one_row_per_user, profiles_of
from churnflow.monitoring.stats import psi
from tests.code.monitor_synthetic import DAY0, FEATURES, clustered_rows, score, with_labels

CFG = MonitorConfig(calibration_splits=20, domain_splits=2, domain_rows=400, online_window=400)
NUMERIC = [f for f in FEATURES if f != "profile__plan"]


@pytest.fixture(scope="module")
def reference() -> dict:
    held = with_labels(clustered_rows(100, 9, prefix="h"), 1)
    return build_reference(
        clustered_rows(600, 8), FEATURES, DAY0, held, score(held), CFG, EvaluateConfig(), seed=3
    )


def _matrix(frame: pl.DataFrame) -> np.ndarray:
    return frame.select(NUMERIC).to_numpy().astype(np.float64)


def test_online_section_watches_numeric_non_recency_features(reference: dict) -> None:
    drift = RollingDrift.from_reference(reference)
    assert drift.feature_names == ["activity__listen_hours_7d", "activity__songs_7d", "content__ua_mobile"]
    assert drift.window == 400 and drift.n_seen == 0 and drift.score() == 0.0


def test_bins_are_the_batch_coarse_bins(reference: dict) -> None:
    drift = RollingDrift.from_reference(reference)
    frame = clustered_rows(50, 10)
    online_bins = drift._bins(_matrix(frame), NUMERIC)
    profiles = {p.name: p for p in profiles_of(reference)}
    for j, name in enumerate(drift.feature_names):
        prof = profiles[name]
        support = np.asarray(prof.support)
        on_support = frame.select(pl.col(name).is_in(support.tolist())).to_series().to_numpy()
        cells = code_matrix(frame, [prof])[:, 0]
        batch = np.where(cells == 0, 0, 1 + np.asarray(prof.coarse)[np.maximum(cells.astype(int) - 1, 0)])
        assert np.array_equal(online_bins[on_support, j], batch[on_support]), name


def test_psi_over_the_buffer_equals_the_batch_psi(reference: dict) -> None:
    drift = RollingDrift.from_reference(reference)
    frame = clustered_rows(200, 11, shift=0.3)  # 800 rows: the buffer keeps the last 400
    drift.update(_matrix(frame), NUMERIC)
    last = frame.tail(400)
    bins = drift._bins(_matrix(last), NUMERIC)
    online = reference["online"]
    for j in range(len(drift.feature_names)):
        counts = np.bincount(bins[:, j], minlength=len(online["shares"][j]))
        assert drift.feature_psi()[j] == pytest.approx(psi(np.asarray(online["shares"][j]), counts, 1e-4))


def _traffic(n_users: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """Serving-like traffic: one request (row) per user."""
    return _matrix(one_row_per_user(clustered_rows(n_users, seed, shift=shift), seed))


def test_score_is_low_on_like_traffic_high_on_shifted_and_recovers(reference: dict) -> None:
    drift = RollingDrift.from_reference(reference)
    quiet = [RollingDrift.from_reference(reference).update(_traffic(400, s), NUMERIC) for s in range(20, 30)]
    assert np.mean(quiet) <= 0.1  # about online_alpha of the features by chance
    assert drift.update(_traffic(400, 13, shift=0.8), NUMERIC) == pytest.approx(2 / 3)
    assert set(drift.drifting_features()) == {"activity__listen_hours_7d", "activity__songs_7d"}
    assert drift.update(_traffic(400, 14), NUMERIC) <= 1 / 3  # the shifted rows left the buffer


def test_missing_and_extra_columns(reference: dict) -> None:
    drift = RollingDrift.from_reference(reference)
    frame = clustered_rows(10, 15)
    extra = np.column_stack([_matrix(frame), np.zeros(frame.height)])
    drift.update(extra, [*NUMERIC, "something_else"])
    only_two = frame.select(NUMERIC[:2]).to_numpy()
    drift.update(only_two, NUMERIC[:2])  # ua_mobile absent → its null bin
    assert drift.n_seen == 2 * frame.height
    with pytest.raises(ValueError, match="columns"):
        drift.update(only_two, NUMERIC)
    with pytest.raises(ValueError, match="online"):
        RollingDrift.from_reference({"version": 2})
