"""Data expectations on the events table built from simulated data and the real Eventsim sample."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from churnflow.config import DataConfig
from churnflow.data.load import LoadResult, load_events
from churnflow.data.schema import EVENT_COLUMNS, EVENT_DTYPES, PAGES, SORT_KEYS


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> LoadResult:
    simulate = pytest.importorskip("churnflow.simulate")
    out = tmp_path_factory.mktemp("sim") / "data"
    simulate.simulate_to_dir("tiny", 11, out)
    return load_events([out], DataConfig())


@pytest.fixture(scope="module")
def eventsim() -> LoadResult:
    folder = Path(__file__).resolve().parents[2].parent / "shared" / "external" / "eventsim_log_data"
    if not folder.is_dir():
        pytest.skip("../shared/external/eventsim_log_data is not present")
    return load_events([folder], DataConfig())


def expectations(result: LoadResult, known_pages_only: bool) -> None:
    ev, anon, q = result.events, result.anonymous, result.quality
    for frame in (ev, anon):
        assert tuple(frame.columns) == EVENT_COLUMNS
        assert dict(frame.schema) == EVENT_DTYPES
    assert q["loaded"] + q["quarantined"] + q["duplicates"] == q["lines_read"]
    assert ev.height + anon.height == q["loaded"]
    # sorted by (user_id, ts, session_id, item_in_session, source position); source positions unique
    assert ev.select(SORT_KEYS).equals(ev.select(SORT_KEYS).sort(list(SORT_KEYS)))
    both = pl.concat([ev, anon])
    assert both.select("source_file", "source_line").is_duplicated().sum() == 0
    assert both.drop("source_file", "source_line").is_duplicated().sum() == 0
    assert (ev["user_id"] != "").all() and (anon["user_id"] == "").all()
    for col in ("ts", "session_id", "page", "item_in_session"):
        assert both[col].null_count() == 0, col
    if known_pages_only:
        assert set(both["page"].cast(pl.String).unique()) <= set(PAGES)
        assert q["unknown_pages"] == {}
    # method and status agree with the page vocabulary wherever the page is known
    vocab = pl.DataFrame(
        {"page": list(PAGES), "m": [m for m, _ in PAGES.values()], "s": [s for _, s in PAGES.values()]}
    )
    joined = both.with_columns(pl.col("page").cast(pl.String)).join(vocab, on="page")
    mismatch = joined.filter(
        (pl.col("method").cast(pl.String) != pl.col("m")) | (pl.col("status") != pl.col("s"))
    )
    assert mismatch.height == 0, mismatch.select("page", "method", "status").unique()
    # registration, where known, is a plausible timestamp and the same for all of a user's events
    assert (
        ev.group_by("user_id")
        .agg(pl.col("registration").drop_nulls().n_unique())
        .filter(pl.col("registration") > 1)
        .height
        == 0
    )


def test_simulated_events_table(simulated: LoadResult) -> None:
    expectations(simulated, known_pages_only=True)
    assert simulated.quality["quarantined"] == 0
    assert simulated.events["user_id"].n_unique() > 10


def test_eventsim_events_table(eventsim: LoadResult) -> None:
    expectations(eventsim, known_pages_only=True)
    assert eventsim.quality["lines_read"] == 8056
    assert eventsim.events.filter(pl.col("page") == "Cancellation Confirmation").height == 0
