"""Leakage properties (hypothesis): events at or after T never change features at T; order never matters."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnflow.config import FeaturesConfig
from churnflow.data.schema import PAGES
from churnflow.features import compute_features, compute_features_online
from tests.code.test_features_synthetic import EVENT_SCHEMA, LOCATIONS, USER_AGENTS

CFG = FeaturesConfig()
T0_MS = int(datetime(2018, 10, 1, tzinfo=UTC).timestamp() * 1000)
DAY_MS = 86_400_000
SPAN_MS = 70 * DAY_MS
PAGE_LIST = sorted(PAGES)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def event_rows(draw: st.DrawFn, user: str, min_size: int = 0, max_size: int = 40) -> list[dict[str, object]]:
    """Random events of one user; ts collide often (coarse grid) to exercise ties."""
    n = draw(st.integers(min_size, max_size))
    rows = []
    for _ in range(n):
        page = draw(st.sampled_from(PAGE_LIST))
        song = page == "NextSong"
        artist = draw(st.sampled_from(["A", "B", "C"])) if song else None
        rows.append(
            {
                "user_id": user,
                "ts": T0_MS + draw(st.integers(0, SPAN_MS // 600_000)) * 600_000,
                "session_id": draw(st.integers(1, 6)),
                "item_in_session": 0,
                "page": page,
                "auth": "Logged In",
                "method": PAGES[page][0],
                "status": PAGES[page][1],
                "level": draw(st.sampled_from(["free", "paid"])),
                "registration": T0_MS - DAY_MS * draw(st.integers(1, 30)),
                "gender": draw(st.sampled_from(["M", "F"])),
                "location": draw(st.sampled_from(LOCATIONS)),
                "user_agent": draw(st.sampled_from(USER_AGENTS)),
                "first_name": "A",
                "last_name": "B",
                "artist": artist,
                "song": draw(st.sampled_from(["x", "y"])) if song else None,
                "length": draw(st.floats(30, 600)) if song else None,
                "source_file": "h",
                "source_line": 0,
            }
        )
    return rows


def _frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    schema = {**EVENT_SCHEMA, "ts": pl.Int64(), "registration": pl.Int64()}
    return pl.DataFrame(rows, schema=schema, orient="row" if not rows else None).with_columns(
        pl.col("ts", "registration").cast(pl.Datetime("ms", "UTC"))
    )


def _cutoffs(user: str, cut_ms: list[int]) -> pl.DataFrame:
    return pl.DataFrame(
        {"user_id": [user] * len(cut_ms), "cutoff": cut_ms}, schema={"user_id": pl.String, "cutoff": pl.Int64}
    ).with_columns(pl.col("cutoff").cast(pl.Datetime("ms", "UTC")))


def _same(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    return a.equals(b)


cut_offsets = st.lists(st.integers(0, SPAN_MS // 600_000), min_size=1, max_size=4, unique=True)


@SETTINGS
@given(
    before=event_rows("u"),
    after=event_rows("u"),
    replacement=event_rows("u"),
    cut_steps=cut_offsets,
    data=st.data(),
)
def test_events_at_or_after_the_cutoff_never_change_features(
    before: list[dict[str, object]],
    after: list[dict[str, object]],
    replacement: list[dict[str, object]],
    cut_steps: list[int],
    data: st.DataObject,
) -> None:
    """Features at T from (events < T) ∪ X equal those from (events < T) ∪ Y for any X, Y at or after T."""
    t = T0_MS + min(cut_steps) * 600_000
    cuts = _cutoffs("u", [t])
    past = [r for r in before if int(r["ts"]) < t]  # type: ignore[call-overload]
    shift = data.draw(st.integers(0, 5 * DAY_MS))

    def at_or_after(rows: list[dict[str, object]]) -> list[dict[str, object]]:
        return [{**r, "ts": t + (int(r["ts"]) - T0_MS) % (SPAN_MS // 2) + shift} for r in rows]  # type: ignore[call-overload]

    base = compute_features(_frame(past), cuts, CFG)
    with_future = compute_features(_frame(past + at_or_after(after)), cuts, CFG)
    changed_future = compute_features(_frame(past + at_or_after(replacement)), cuts, CFG)
    assert _same(base, with_future)
    assert _same(base, changed_future)
    # the online path sees the same thing
    online = compute_features_online(_frame(past + at_or_after(after)), cuts["cutoff"][0], CFG)
    row = base.row(0, named=True)
    assert all((row[k] is None and math.isnan(v)) or row[k] == v for k, v in online.items())


@SETTINGS
@given(
    rows=event_rows("u", max_size=60),
    others=event_rows("w", max_size=30),
    cut_steps=cut_offsets,
    seed=st.integers(0, 10**6),
)
def test_shuffled_input_gives_identical_output(
    rows: list[dict[str, object]], others: list[dict[str, object]], cut_steps: list[int], seed: int
) -> None:
    events = _frame(rows + others)
    cuts = pl.concat(
        [_cutoffs("u", [T0_MS + s * 600_000 for s in cut_steps]), _cutoffs("w", [T0_MS + SPAN_MS])]
    )
    expected = compute_features(events, cuts, CFG)
    shuffled = events.sample(fraction=1.0, shuffle=True, seed=seed)
    assert _same(compute_features(shuffled, cuts, CFG), expected)
    assert _same(compute_features(shuffled.lazy(), cuts, CFG), expected)


@SETTINGS
@given(rows=event_rows("u", min_size=1, max_size=60), cut_steps=cut_offsets, pick=st.integers(0, 10**6))
def test_deleting_or_editing_any_event_at_or_after_t_changes_nothing(
    rows: list[dict[str, object]], cut_steps: list[int], pick: int
) -> None:
    """Take real event sets, then delete one event at/after T or edit its page/level/length in place."""
    t = T0_MS + sorted(cut_steps)[len(cut_steps) // 2] * 600_000
    cuts = _cutoffs("u", [t])
    base = compute_features(_frame(rows), cuts, CFG)
    late = [i for i, r in enumerate(rows) if int(r["ts"]) >= t]  # type: ignore[call-overload]
    if not late:
        return
    i = late[pick % len(late)]
    deleted = rows[:i] + rows[i + 1 :]
    edited = [*rows]
    edited[i] = {**rows[i], "page": "Cancel", "level": "paid", "length": None, "artist": None, "song": None}
    assert _same(compute_features(_frame(deleted), cuts, CFG), base)
    assert _same(compute_features(_frame(edited), cuts, CFG), base)
