"""Simulator on the tiny preset: Sparkify format, determinism, churn story, ground-truth consistency, CLI."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from churnflow.cli import app
from churnflow.data.schema import ANONYMOUS_PAGES, AUTH_VALUES, PAGES, RAW_KEYS
from churnflow.simulate import (
    PRESETS,
    SimulationSummary,
    build_world,
    load_ground_truth,
    simulate_to_dir,
)
from churnflow.simulate.calibration import read_events
from churnflow.simulate.engine import iter_event_chunks

LOCATION = re.compile(r"^[^,]+, [A-Z]{2}(-[A-Z]{2})*$")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SimulationSummary]:
    out = tmp_path_factory.mktemp("tiny")
    return out, simulate_to_dir("tiny", 7, out, progress=False)


@pytest.fixture(scope="module")
def tiny_events(tiny: tuple[Path, SimulationSummary]) -> pl.DataFrame:
    return read_events(tiny[1].events_path)


@pytest.fixture(scope="module")
def tiny_truth(tiny: tuple[Path, SimulationSummary]) -> pl.DataFrame:
    truth = load_ground_truth(tiny[0])
    assert truth is not None
    return truth


def test_every_line_has_sparkify_keys_order_and_types(tiny: tuple[Path, SimulationSummary]) -> None:
    lines = Path(tiny[1].events_path).read_text().splitlines()
    assert len(lines) == tiny[1].n_events
    for n, line in enumerate(lines, 1):
        row = json.loads(line)
        assert tuple(row) == RAW_KEYS, f"line {n}: keys {tuple(row)}"
        assert isinstance(row["ts"], int) and isinstance(row["sessionId"], int), f"line {n}"
        assert isinstance(row["itemInSession"], int) and isinstance(row["status"], int), f"line {n}"
        assert isinstance(row["userId"], str), f"line {n}"
        assert row["registration"] is None or isinstance(row["registration"], int), f"line {n}"
        assert (row["length"] is None) == (row["page"] != "NextSong"), f"line {n}"
        assert (row["artist"] is None) == (row["song"] is None) == (row["length"] is None), f"line {n}"
        assert (row["method"], row["status"]) == PAGES[row["page"]], f"line {n}: {row['page']}"
        assert row["auth"] in AUTH_VALUES and row["level"] in ("free", "paid"), f"line {n}"
        if row["userId"] == "":
            assert row["auth"] in ("Logged Out", "Guest") and row["page"] in ANONYMOUS_PAGES, f"line {n}"
            assert row["firstName"] is row["location"] is row["registration"] is None, f"line {n}"
        else:
            assert row["auth"] in ("Logged In", "Cancelled"), f"line {n}"
            assert LOCATION.match(row["location"]), f"line {n}: {row['location']}"
            assert row["userAgent"].startswith("Mozilla/5.0"), f"line {n}"
            assert row["gender"] in ("M", "F") and row["firstName"] and row["lastName"], f"line {n}"
        assert (row["auth"] == "Cancelled") == (row["page"] == "Cancellation Confirmation"), f"line {n}"


def test_tiny_holds_all_pages_cancellations_and_silent_churners(
    tiny_events: pl.DataFrame, tiny_truth: pl.DataFrame
) -> None:
    assert set(tiny_events["page"].unique()) == set(PAGES)
    kinds = dict(tiny_truth.group_by("churn_kind").len().iter_rows())
    assert kinds.get("cancel", 0) >= 3 and kinds.get("silent", 0) >= 1, kinds
    assert set(tiny_events["auth"].unique()) == set(AUTH_VALUES)


@pytest.mark.parametrize("seed", [1, 42, 2024])
def test_tiny_has_both_churn_kinds_for_other_seeds(seed: int) -> None:
    kinds = build_world("tiny", seed).users.churn_kind
    assert (kinds == 1).sum() >= 3 and (kinds == 2).sum() >= 1


def test_sessions_are_ordered_and_do_not_overlap(tiny_events: pl.DataFrame) -> None:
    per_session = tiny_events.group_by("sessionId", maintain_order=True).agg(
        pl.col("itemInSession"), pl.col("ts"), pl.col("userId").filter(pl.col("userId") != "").unique()
    )
    for sid, items, ts, users in per_session.iter_rows():
        assert items == list(range(len(items))), f"session {sid}: itemInSession not 0..n-1"
        assert ts == sorted(ts), f"session {sid}: ts decrease"
        assert len(users) <= 1, f"session {sid} shared by users {users}"
    spans = (
        tiny_events.filter(pl.col("userId") != "")
        .group_by("userId", "sessionId")
        .agg(pl.col("ts").min().alias("lo"), pl.col("ts").max().alias("hi"))
        .sort("userId", "lo")
    )
    overlap = spans.with_columns(pl.col("lo").shift(-1).over("userId").alias("next_lo")).filter(
        pl.col("next_lo") <= pl.col("hi")
    )
    assert overlap.height == 0, overlap


def test_logouts_lead_to_logged_out_events_of_the_same_session(tiny_events: pl.DataFrame) -> None:
    nxt = tiny_events.with_columns(
        pl.col("auth").shift(-1).alias("next_auth"), pl.col("sessionId").shift(-1).alias("next_sid")
    ).filter(pl.col("page") == "Logout")
    assert (nxt["next_auth"] == "Logged Out").all()
    assert (nxt["next_sid"] == nxt["sessionId"]).all()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a, b, c = (
        simulate_to_dir("tiny", s, tmp_path / n, progress=False) for s, n in ((3, "a"), (3, "b"), (4, "c"))
    )
    assert Path(a.events_path).read_bytes() == Path(b.events_path).read_bytes()
    assert Path(a.truth_path).read_bytes() == Path(b.truth_path).read_bytes()
    assert Path(a.events_path).read_bytes() != Path(c.events_path).read_bytes()


def test_gzip_is_deterministic_and_holds_the_same_lines(tmp_path: Path) -> None:
    plain = simulate_to_dir("tiny", 5, tmp_path / "plain", progress=False)
    g1 = simulate_to_dir("tiny", 5, tmp_path / "g1", gzip=True, progress=False)
    g2 = simulate_to_dir("tiny", 5, tmp_path / "g2", gzip=True, progress=False)
    raw = Path(g1.events_path).read_bytes()
    assert g1.events_path.endswith("events.json.gz")
    assert raw == Path(g2.events_path).read_bytes()
    assert raw[4:8] == b"\x00\x00\x00\x00", "gzip mtime must be 0"
    assert raw[3] & 0x08 == 0, "gzip header must not carry a file name"
    assert gzip.decompress(raw) == Path(plain.events_path).read_bytes()


def test_switching_to_gzip_removes_the_plain_file_and_keeps_others(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    simulate_to_dir("tiny", 5, tmp_path, progress=False)
    simulate_to_dir("tiny", 5, tmp_path, gzip=True, progress=False)
    assert not (tmp_path / "events.json").exists()
    assert (tmp_path / "events.json.gz").is_file() and (tmp_path / "notes.txt").read_text() == "mine"


def test_cancelled_users_stop_after_the_confirmation(
    tiny_events: pl.DataFrame, tiny_truth: pl.DataFrame
) -> None:
    last = (
        tiny_events.filter(pl.col("userId") != "")
        .sort("userId", "ts", "itemInSession")
        .group_by("userId")
        .agg(pl.col("page").last().alias("last_page"), pl.col("ts").max().alias("last_ts"))
    )
    confirmed = tiny_events.filter(pl.col("page") == "Cancellation Confirmation")
    assert confirmed["userId"].n_unique() == confirmed.height, "a user cancelled twice"
    cancelled = set(confirmed["userId"])
    assert set(last.filter(pl.col("last_page") == "Cancellation Confirmation")["userId"]) == cancelled, (
        "events after a cancellation"
    )
    # each cancellation is preceded by Cancel in the same session
    prev = tiny_events.with_columns(pl.col("page").shift(1).alias("prev")).filter(
        pl.col("page") == "Cancellation Confirmation"
    )
    assert (prev["prev"] == "Cancel").all()


def test_ground_truth_matches_the_events(tiny_events: pl.DataFrame, tiny_truth: pl.DataFrame) -> None:
    confirmed = dict(
        tiny_events.filter(pl.col("page") == "Cancellation Confirmation").select("userId", "ts").iter_rows()
    )
    truth = tiny_truth.with_columns(
        pl.col("churn_ts").dt.epoch("ms").alias("churn_ms"),
        pl.col("last_event_ts").dt.epoch("ms").alias("last_ms"),
    )
    cancel = truth.filter(pl.col("churn_kind") == "cancel")
    assert dict(cancel.select("user_id", "churn_ms").iter_rows()) == confirmed
    silent = truth.filter(pl.col("churn_kind") == "silent", pl.col("n_events") > 0)
    assert silent.height > 0
    assert (silent["last_ms"] < silent["churn_ms"]).all(), "a silent churner has events after the churn"
    stayers = truth.filter(pl.col("churn_kind").is_null())
    assert stayers["churn_ts"].null_count() == stayers.height
    counts = dict(tiny_events.filter(pl.col("userId") != "").group_by("userId").len().iter_rows())
    assert {u: n for u, n in truth.select("user_id", "n_events").iter_rows() if n} == counts
    hazard = np.vstack(truth["hazard"].to_list())
    assert hazard.shape == (PRESETS["tiny"].n_users, PRESETS["tiny"].hazard_days)
    assert ((hazard >= 0) & (hazard < 1)).all()


def test_load_ground_truth_is_none_without_sidecar(tmp_path: Path) -> None:
    assert load_ground_truth(tmp_path) is None


def test_unknown_preset_or_scenario_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown simulator preset 'huge'"):
        simulate_to_dir("huge", 1, tmp_path, progress=False)
    with pytest.raises(ValueError, match="unknown simulator scenario 'odd'"):
        simulate_to_dir("tiny", 1, tmp_path, scenario="odd", progress=False)


def test_drifted_scenario_changes_the_behaviour_mix(tmp_path: Path, tiny_events: pl.DataFrame) -> None:
    drifted = read_events(
        simulate_to_dir("tiny", 7, tmp_path, scenario="drifted", progress=False).events_path
    )

    def per_song(frame: pl.DataFrame, page: str) -> float:
        return frame.filter(pl.col("page") == page).height / frame.filter(pl.col("page") == "NextSong").height

    assert per_song(drifted, "Error") > 1.5 * per_song(tiny_events, "Error")
    assert per_song(drifted, "Thumbs Up") < per_song(tiny_events, "Thumbs Up")


def test_cli_writes_events_and_truth(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["simulate", "--preset", "tiny", "--seed", "7", "--out", str(tmp_path), "--gzip"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "events.json.gz").is_file()
    assert (tmp_path / "_truth" / "ground_truth.parquet").is_file()
    bad = CliRunner().invoke(app, ["simulate", "--preset", "nope", "--out", str(tmp_path)])
    assert bad.exit_code != 0 and "nope" in bad.output


# --- scenarios --------------------------------------------------------------------------------------------


def _events_of(scenario: str, change_day: int = 0, preset: str = "mini", seed: int = 8) -> pl.DataFrame:
    world = build_world(preset, seed, scenario, change_day)
    return pl.concat(list(iter_event_chunks(world))).filter(pl.col("userId") != "")


def _per_song(frame: pl.DataFrame, page: str, level: str | None = None) -> float:
    if level is not None:
        frame = frame.filter(pl.col("level") == level)
    return frame.filter(pl.col("page") == page).height / frame.filter(pl.col("page") == "NextSong").height


@pytest.fixture(scope="module")
def baseline_mini() -> pl.DataFrame:
    return _events_of("baseline")


def test_default_is_an_alias_of_baseline(tmp_path: Path) -> None:
    a = simulate_to_dir("tiny", 2, tmp_path / "a", scenario="default", progress=False)
    b = simulate_to_dir("tiny", 2, tmp_path / "b", scenario="baseline", progress=False)
    assert Path(a.events_path).read_bytes() == Path(b.events_path).read_bytes()
    assert a.scenario == b.scenario == "baseline"


def test_more_ads_doubles_adverts_for_free_users_only(baseline_mini: pl.DataFrame) -> None:
    ads = _events_of("more_ads")
    ratio = _per_song(ads, "Roll Advert", "free") / _per_song(baseline_mini, "Roll Advert", "free")
    assert 1.8 < ratio < 2.2, ratio
    assert _per_song(ads, "Roll Advert", "paid") < 2 * _per_song(baseline_mini, "Roll Advert", "paid")
    for page in ("Thumbs Down", "Thumbs Up", "Add Friend", "Home"):  # nothing else moves
        assert _per_song(ads, page) == pytest.approx(_per_song(baseline_mini, page), rel=0.1), page


def test_app_errors_raise_errors_and_cut_sessions(baseline_mini: pl.DataFrame) -> None:
    err = _events_of("app_errors")
    assert _per_song(err, "Error") > 3 * _per_song(baseline_mini, "Error")
    assert _per_song(err, "Help") > 1.2 * _per_song(baseline_mini, "Help")

    def songs_per_session(frame: pl.DataFrame) -> float:
        return frame.filter(pl.col("page") == "NextSong").height / frame["sessionId"].n_unique()

    assert songs_per_session(err) < 0.8 * songs_per_session(baseline_mini)


def test_price_rise_raises_churn_without_changing_behaviour(baseline_mini: pl.DataFrame) -> None:
    # from day 1, so both worlds start from the same customers (a whole-world price rise changes who is
    # still a customer at the start too)
    base, rise = build_world("mini", 8, "baseline"), build_world("mini", 8, "price_rise", 1)
    # the same satisfaction paths (same seed): behaviour is driven by the same state ...
    assert np.array_equal(base.users.sat, rise.users.sat)
    on = base.users.hazard[:, 1:] > 0
    assert (rise.users.hazard[:, 1:][on] > base.users.hazard[:, 1:][on]).all()
    assert np.array_equal(rise.users.hazard[:, 0], base.users.hazard[:, 0])
    # ... but more users decide to leave
    n_base = int((base.users.decision_kind != 0).sum())
    n_rise = int((rise.users.decision_kind != 0).sum())
    assert n_rise > 1.4 * n_base, (n_base, n_rise)
    events = pl.concat(list(iter_event_chunks(rise))).filter(pl.col("userId") != "")
    for page in ("Thumbs Down", "Thumbs Up", "Add Friend", "Error", "Roll Advert"):
        assert _per_song(events, page) == pytest.approx(_per_song(baseline_mini, page), rel=0.12), page


def test_scenario_changes_start_on_the_change_day(baseline_mini: pl.DataFrame) -> None:
    late = _events_of("more_ads", change_day=30)
    day30 = PRESETS["mini"].start_ms + 30 * 86_400_000
    before, after = pl.col("ts") < day30, pl.col("ts") >= day30
    r_before = _per_song(late.filter(before), "Roll Advert", "free") / _per_song(
        baseline_mini.filter(before), "Roll Advert", "free"
    )
    r_after = _per_song(late.filter(after), "Roll Advert", "free") / _per_song(
        baseline_mini.filter(after), "Roll Advert", "free"
    )
    assert 0.85 < r_before < 1.18, r_before
    assert 1.7 < r_after < 2.3, r_after
    # the latent world is untouched by an advert change: same sessions
    assert np.array_equal(build_world("mini", 8, "more_ads", 30).sessions.start_days,
                          build_world("mini", 8).sessions.start_days)  # fmt: skip


def test_cli_accepts_every_scenario_and_a_change_day(tmp_path: Path) -> None:
    for name in ("baseline", "default", "more_ads", "app_errors", "price_rise", "drifted"):
        result = CliRunner().invoke(
            app,
            ["simulate", "--preset", "tiny", "--seed", "3", "--out", str(tmp_path / name), "--scenario", name,
             "--change-day", "20"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        truth = load_ground_truth(tmp_path / name)
        assert truth is not None and truth["change_day"][0] == 20
    bad = CliRunner().invoke(app, ["simulate", "--preset", "tiny", "--out", str(tmp_path), "--scenario", "x"])
    assert bad.exit_code != 0 and "more_ads" in bad.output
