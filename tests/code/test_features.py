"""Feature engine: registry, hand values, output shape/order, input types, online = offline, errors."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from churnflow.config import FeaturesConfig
from churnflow.features import (
    FeatureInputError,
    compute_features,
    compute_features_online,
    feature_names,
    feature_registry,
    render_catalog,
)
from churnflow.features.formulas import FAMILIES
from tests.code.test_features_synthetic import EVENT_SCHEMA, USER_AGENTS, make_events, weekly_cutoffs

CFG = FeaturesConfig()
T = datetime(2018, 10, 15, tzinfo=UTC)


def _event(
    ts: datetime,
    session: int,
    page: str,
    level: str = "free",
    artist: str | None = None,
    song: str | None = None,
    length: float | None = None,
    user: str = "a",
) -> dict[str, object]:
    from churnflow.data.schema import PAGES

    return {
        "user_id": user, "ts": ts, "session_id": session, "item_in_session": 0, "page": page,
        "auth": "Logged In", "method": PAGES[page][0], "status": PAGES[page][1], "level": level,
        "registration": datetime(2018, 9, 1, tzinfo=UTC), "gender": "F",
        "location": "Boston-Cambridge-Newton, MA-NH", "user_agent": USER_AGENTS[0], "first_name": "A",
        "last_name": "B", "artist": artist, "song": song, "length": length, "source_file": "x",
        "source_line": 0,
    }  # fmt: skip


def hand_events() -> pl.DataFrame:
    """One user, two sessions before T, one event exactly at T and one after (both must be ignored)."""
    d = datetime
    rows = [
        _event(d(2018, 10, 1, 10, 0, tzinfo=UTC), 1, "NextSong", artist="A", song="s1", length=200.0),
        _event(d(2018, 10, 1, 10, 5, tzinfo=UTC), 1, "Thumbs Up"),
        _event(d(2018, 10, 1, 10, 10, tzinfo=UTC), 1, "NextSong", artist="A", song="s1", length=200.0),
        _event(
            d(2018, 10, 10, 20, 0, tzinfo=UTC), 2, "NextSong", "paid", artist="B", song="s2", length=100.0
        ),
        _event(d(2018, 10, 10, 20, 30, tzinfo=UTC), 2, "Error", "paid"),
        _event(T, 3, "NextSong", "free", artist="C", song="s3", length=300.0),
        _event(T + timedelta(days=1), 3, "Thumbs Down", "free"),
    ]
    return pl.DataFrame(rows, schema=EVENT_SCHEMA)


def test_registry_has_seven_families_and_at_least_167_features() -> None:
    reg = feature_registry(CFG)
    assert len(reg) >= 167
    assert {s.family for s in reg} == set(FAMILIES)
    assert len({s.name for s in reg}) == len(reg)
    for spec in reg:
        assert spec.name.startswith(f"{spec.family}__")
        assert spec.description and spec.dtype == "float64"
    assert feature_names(CFG) == [s.name for s in reg]


def test_registry_follows_the_configured_windows() -> None:
    names = feature_names(FeaturesConfig(windows_days=[3, 10]))
    assert "activity__songs_3d" in names and "activity__songs_10d" in names
    assert not any(n.endswith("_7d") for n in names)
    with pytest.raises(ValueError, match="windows_days"):
        feature_registry(FeaturesConfig(windows_days=[7, 7]))


def test_catalog_lists_every_feature_by_family() -> None:
    reg = feature_registry(CFG)
    text = render_catalog(reg)
    assert text.startswith("# Feature catalogue")
    for family in FAMILIES:
        assert f"## {family}" in text
    assert all(f"`{s.name}`" in text for s in reg)
    assert render_catalog(reg) == text


def test_hand_computed_values_use_only_events_before_the_cutoff() -> None:
    cut = pl.DataFrame(
        {"user_id": ["a"], "cutoff": [T]}, schema={"user_id": pl.String, "cutoff": pl.Datetime("ms", "UTC")}
    )
    row = compute_features(hand_events(), cut, CFG).row(0, named=True)
    expected = {
        "activity__events_all": 5, "activity__songs_all": 3, "activity__sessions_all": 2,
        "activity__active_days_all": 2, "activity__listen_hours_all": 500 / 3600,
        "activity__events_7d": 2, "activity__songs_7d": 1, "activity__events_14d": 5,
        "engagement__thumbs_up_all": 1, "engagement__thumbs_up_per_song_all": 1 / 3,
        "engagement__thumbs_down_all": 0, "content__distinct_artists": 2, "content__distinct_songs": 2,
        "content__repeat_play_share_all": 1 / 3, "recency__days_since_last_event": 4 + 3.5 / 24,
        "recency__days_since_first_event": 13 + 14 / 24, "session__mean_session_hours_all": 1 / 3,
        "session__mean_gap_hours_all": 9 * 24 + 10, "subscription__is_paid": 1,
        "subscription__paid_event_share_all": 2 / 5, "friction__errors_all": 1, "friction__errors_7d": 1,
        "recency__events_ratio_7d_vs_prev": 2 / 3, "subscription__tenure_days": 44,
        "content__ua_os_windows": 1, "content__ua_browser_chrome": 1, "content__ua_mobile": 0,
        "content__region_northeast": 1, "content__region_west": 0, "content__gender_f": 1,
    }  # fmt: skip
    for name, value in expected.items():
        assert row[name] == pytest.approx(value, rel=1e-12), name
    assert row["engagement__thumbs_down_share_7d"] is None  # no thumbs in the window: undefined


def test_one_row_per_input_row_in_input_order() -> None:
    ev = make_events(n_users=4, events_per_user=120, seed=1)
    cut = weekly_cutoffs(ev).sample(fraction=1.0, shuffle=True, seed=3)
    ghost = pl.DataFrame({"user_id": ["ghost"], "cutoff": [cut["cutoff"][0]]}, schema=cut.schema)
    cut = pl.concat([cut, cut.head(3), ghost])
    out = compute_features(ev, cut, CFG)
    assert out.columns == ["user_id", "cutoff", *feature_names(CFG)]
    assert out.select("user_id", "cutoff").equals(cut)
    assert all(dt == pl.Float64 for dt in out.select(feature_names(CFG)).dtypes)
    ghost = out.filter(pl.col("user_id") == "ghost").row(0, named=True)
    assert ghost["activity__events_all"] == 0 and ghost["recency__days_since_last_event"] is None


def test_categorical_lazy_and_string_inputs_agree_and_runs_are_identical() -> None:
    ev = make_events(n_users=3, events_per_user=200, seed=2)
    cut = weekly_cutoffs(ev)
    plain = compute_features(ev, cut, CFG)
    cats = ev.with_columns(
        pl.col("page").cast(pl.Categorical),
        pl.col("level").cast(pl.Enum(["free", "paid"])),
        pl.col("user_id").cast(pl.Categorical),
        pl.col("user_agent").cast(pl.Categorical),
    )
    assert compute_features(cats.lazy(), cut, CFG).equals(plain)
    assert compute_features(ev, cut, CFG).equals(plain)
    naive = cut.with_columns(pl.col("cutoff").dt.replace_time_zone(None).dt.cast_time_unit("us"))
    assert compute_features(ev, naive, CFG).drop("cutoff").equals(plain.drop("cutoff"))


def test_online_equals_offline_exactly() -> None:
    ev = make_events(n_users=3, events_per_user=400, seed=4)
    cut = weekly_cutoffs(ev)
    offline = compute_features(ev, cut, CFG)
    names = feature_names(CFG)
    for row in offline.iter_rows(named=True):
        one = ev.filter(pl.col("user_id") == row["user_id"])
        online = compute_features_online(one, row["cutoff"], CFG)
        assert list(online) == names
        for name in names:
            want = row[name]
            assert (want is None and math.isnan(online[name])) or online[name] == want, (name, row["cutoff"])


def _with_nulls(events: pl.DataFrame, columns: list[str], share: float, seed: int) -> pl.DataFrame:
    """``events`` with about ``share`` of each column's values set to null (independently per column)."""
    rng = np.random.default_rng(seed)
    return events.with_columns(
        pl.when(pl.Series(rng.random(events.height) < share)).then(None).otherwise(pl.col(c)).alias(c)
        for c in columns
    )


def test_online_equals_offline_with_nulls_unknown_pages_and_categoricals() -> None:
    """Every nullable column the measures read, pages outside the schema, categorical/enum inputs."""
    nullable = ["session_id", "level", "status", "gender", "location", "user_agent", "registration"]
    ev = _with_nulls(make_events(n_users=3, events_per_user=150, seed=6), nullable, 0.1, seed=1)
    ev = _with_nulls(ev, ["artist", "song", "length"], 0.1, seed=2).with_columns(
        pl.when(pl.col("page") == "Home").then(pl.lit("Mystery")).otherwise(pl.col("page")).alias("page"),
        pl.col("level").cast(pl.Enum(["free", "paid"])),
        pl.col("user_agent").cast(pl.Categorical),
    )
    cut = weekly_cutoffs(ev)
    offline = compute_features(ev.sample(fraction=1.0, shuffle=True, seed=3), cut, CFG)
    for row in offline.iter_rows(named=True):
        online = compute_features_online(ev.filter(pl.col("user_id") == row["user_id"]), row["cutoff"], CFG)
        for name, value in online.items():
            want = row[name]
            assert (want is None and math.isnan(value)) or value == want, (name, row["cutoff"])


def test_online_equals_offline_for_other_input_dtypes_and_one_valued_columns() -> None:
    """Online reads some dtypes as they are and types the others with the offline expression: both agree.

    Microsecond timestamps, unsigned and float columns, categorical hashed strings, a user whose level,
    gender, user agent and location take one value (coded once online) or are all null.
    """
    ev = make_events(n_users=3, events_per_user=150, seed=8)
    cut = weekly_cutoffs(ev)
    uid = ev["user_id"].unique().sort()[0]
    one_valued = pl.col("user_id") == uid
    ev = ev.with_columns(
        pl.col("ts").dt.cast_time_unit("us"),
        pl.col("registration").dt.cast_time_unit("ns"),
        pl.col("session_id").cast(pl.UInt64),
        pl.col("status").cast(pl.Int16),
        pl.col("length").cast(pl.Float32),
        pl.col("artist").cast(pl.Categorical),
        pl.col("song").cast(pl.Categorical),
        pl.when(one_valued).then(pl.lit("paid")).otherwise(pl.col("level")).alias("level"),
        pl.when(one_valued).then(None).otherwise(pl.col("gender")).alias("gender"),
    )
    offline = compute_features(ev, cut, CFG)
    for row in offline.iter_rows(named=True):
        online = compute_features_online(ev.filter(pl.col("user_id") == row["user_id"]), row["cutoff"], CFG)
        for name, value in online.items():
            want = row[name]
            assert (want is None and math.isnan(value)) or value == want, (name, row["cutoff"])


def test_online_handles_no_events_before_the_cutoff_and_naive_cutoffs() -> None:
    ev = hand_events()
    early = compute_features_online(ev, datetime(2018, 9, 1), CFG)
    assert early["activity__events_all"] == 0 and math.isnan(early["recency__days_since_last_event"])
    naive = compute_features_online(ev, T.replace(tzinfo=None), CFG)
    assert naive == pytest.approx(compute_features_online(ev, T, CFG), nan_ok=True)


def test_clear_errors_name_the_field() -> None:
    ev = hand_events()
    cut = pl.DataFrame({"user_id": ["a"], "cutoff": [T]})
    with pytest.raises(FeatureInputError, match="page"):
        compute_features(ev.drop("page"), cut, CFG)
    with pytest.raises(FeatureInputError, match="cutoff"):
        compute_features(ev, cut.rename({"cutoff": "when"}), CFG)
    with pytest.raises(FeatureInputError, match=r"cutoffs\.cutoff"):
        compute_features(ev, cut.with_columns(pl.col("cutoff").cast(pl.String)), CFG)
    with pytest.raises(FeatureInputError, match="one user"):
        compute_features_online(pl.concat([ev, ev.with_columns(user_id=pl.lit("b"))]), T, CFG)
    with pytest.raises(FeatureInputError, match=r"events\.ts"):
        compute_features(ev.with_columns(pl.col("ts").cast(pl.String)), cut, CFG)
