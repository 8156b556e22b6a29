"""Point-in-time churn labels: hand-built cases, censoring, warnings and hypothesis leakage properties."""

from __future__ import annotations

import warnings
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnflow.config import LabelsConfig
from churnflow.labels import (
    LABEL_DTYPES,
    LabelWarning,
    OneClassError,
    build_labels,
    check_two_classes,
    label_known_at,
    label_window_days,
    make_cutoffs,
    schedule_cutoffs,
)

D0 = datetime(2018, 10, 1, tzinfo=UTC)
DAY = timedelta(days=1)
CANCEL, DOWN = "Cancellation Confirmation", "Submit Downgrade"


def frame(rows: list[tuple[str, datetime, str]], reg: dict[str, datetime] | None = None) -> pl.DataFrame:
    """Minimal events frame: user_id, ts, page, registration (default: a year before D0)."""
    reg = reg or {}
    ts_type = pl.Datetime("ms", "UTC")
    return pl.DataFrame(
        {
            "user_id": [u for u, _, _ in rows],
            "ts": [t for _, t, _ in rows],
            "page": [p for _, _, p in rows],
            "registration": [reg.get(u, D0 - 365 * DAY) for u, _, _ in rows],
        },
        schema={"user_id": pl.String, "ts": ts_type, "page": pl.String, "registration": ts_type},
    ).sort("user_id", "ts")


def daily(user: str, first: int, last: int, hour: int = 12) -> list[tuple[str, datetime, str]]:
    return [(user, D0 + d * DAY + timedelta(hours=hour), "NextSong") for d in range(first, last + 1)]


CFG = LabelsConfig(first_cutoff_days=10, cutoff_every_days=10, horizon_days=7, inactivity_days=5)


def label_at(labels: pl.DataFrame, user: str, cutoff: datetime) -> dict[str, object] | None:
    rows = labels.filter((pl.col("user_id") == user) & (pl.col("cutoff") == cutoff)).to_dicts()
    return rows[0] if rows else None


def quiet_build(events: pl.DataFrame, cfg: LabelsConfig) -> tuple[pl.DataFrame, dict[str, object]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LabelWarning)
        res = build_labels(events, cfg)
    return res.labels, res.summary


def test_cancel_inactive_and_active_users() -> None:
    rows = daily("keep", 0, 60) + daily("quit", 0, 13) + daily("cancel", 0, 14) + daily("fade", 0, 17)
    rows.append(("cancel", D0 + 15 * DAY + timedelta(hours=3), CANCEL))
    labels, summary = quiet_build(frame(rows), CFG)
    t10 = D0 + 10 * DAY
    assert label_at(labels, "keep", t10)["label"] == 0  # type: ignore[index]
    quit_row = label_at(labels, "quit", t10)
    assert quit_row and quit_row["label"] == 1 and quit_row["churn_kind"] == "inactive"
    assert quit_row["churn_ts"] == D0 + 14 * DAY  # the day after the last activity (day 13)
    cancel_row = label_at(labels, "cancel", t10)
    assert cancel_row and cancel_row["churn_kind"] == "cancel"
    assert cancel_row["churn_ts"] == D0 + 15 * DAY + timedelta(hours=3)
    t20 = D0 + 20 * DAY
    assert label_at(labels, "cancel", t20) is None  # cancelled before T: not eligible
    assert label_at(labels, "quit", t20) is None  # inactive since day 14: known by day 19 < T
    # "fade" was last active on day 17: at T=20 the inactivity (from day 18) is not yet known (5 days)
    # → still eligible, and labelled positive with the churn date before T
    assert label_at(labels, "fade", t10)["label"] == 0  # type: ignore[index]  # day 18 ≥ T + 7
    f20 = label_at(labels, "fade", t20)
    assert f20 and f20["label"] == 1 and f20["churn_ts"] == D0 + 18 * DAY
    assert summary["per_kind"] == {"cancel": 1, "downgrade": 0, "inactive": 2}
    assert dict(labels.schema) == LABEL_DTYPES


def test_short_gap_is_not_churn_and_long_gap_is() -> None:
    rows = daily("a", 0, 11) + daily("a", 15, 60) + daily("b", 0, 11) + daily("b", 18, 60)
    labels, _ = quiet_build(frame(rows), CFG)
    t10 = D0 + 10 * DAY
    assert label_at(labels, "a", t10)["label"] == 0  # type: ignore[index]  # gap of 3 days < 5
    b = label_at(labels, "b", t10)
    assert b and b["label"] == 1 and b["churn_ts"] == D0 + 12 * DAY  # 6 silent days ≥ 5
    assert label_at(labels, "b", D0 + 20 * DAY)["label"] == 0  # type: ignore[index]  # came back


def test_registration_and_first_activity_gate_eligibility() -> None:
    rows = daily("late", 12, 60) + daily("new", 5, 60) + daily("keep", 0, 60)
    labels, _ = quiet_build(frame(rows, reg={"new": D0 + 11 * DAY}), CFG)
    t10 = D0 + 10 * DAY
    assert label_at(labels, "late", t10) is None  # no activity before T
    assert label_at(labels, "new", t10) is None  # registered after T
    assert label_at(labels, "new", D0 + 20 * DAY) is not None


def test_event_exactly_at_cutoff_belongs_to_the_future() -> None:
    t10 = D0 + 10 * DAY
    rows = daily("keep", 0, 60) + daily("c", 0, 9) + [("c", t10, CANCEL)]
    labels, _ = quiet_build(frame(rows), CFG)
    row = label_at(labels, "c", t10)
    assert row and row["label"] == 1 and row["churn_kind"] == "cancel" and row["churn_ts"] == t10


def test_downgrade_is_optional() -> None:
    rows = daily("keep", 0, 60) + daily("d", 0, 60) + [("d", D0 + 12 * DAY, DOWN)]
    without, _ = quiet_build(frame(rows), CFG)
    with_dg, summary = quiet_build(frame(rows), replace(CFG, use_downgrade=True))
    t10 = D0 + 10 * DAY
    assert label_at(without, "d", t10)["label"] == 0  # type: ignore[index]
    row = label_at(with_dg, "d", t10)
    assert row and row["churn_kind"] == "downgrade" and summary["per_kind"]["downgrade"] == 1
    assert label_at(with_dg, "d", D0 + 20 * DAY)["label"] == 0  # type: ignore[index]  # still a customer


def test_censoring_drops_late_cutoffs_and_counts_rows() -> None:
    events = frame(daily("keep", 0, 60) + daily("x", 0, 60))
    labels, summary = quiet_build(events, CFG)
    end = events["ts"].max()
    scheduled = schedule_cutoffs(events, CFG)
    usable = make_cutoffs(events, CFG)
    assert scheduled == [D0 + d * DAY for d in (10, 20, 30, 40, 50, 60)]
    assert all(label_known_at(t, CFG) <= end for t in usable)
    assert usable == [D0 + d * DAY for d in (10, 20, 30, 40)]
    assert sorted(labels["cutoff"].unique().to_list()) == usable
    assert summary["censored"] == {
        "n_cutoffs": 2,
        "n_rows": 4,
        "cutoffs": [(D0 + 50 * DAY).isoformat(), (D0 + 60 * DAY).isoformat()],
    }
    no_inactivity = replace(CFG, use_inactivity=False)
    assert len(make_cutoffs(events, no_inactivity)) == 5  # the window is only the horizon


def test_no_cancellations_and_no_cutoff_warn_but_finish() -> None:
    events = frame(daily("a", 0, 20))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = build_labels(events, LabelsConfig())
    assert any(issubclass(w.category, LabelWarning) and "no usable cutoff" in str(w.message) for w in caught)
    assert res.labels.height == 0 and res.summary["n_rows"] == 0
    assert any("Cancellation Confirmation" in w for w in res.summary["warnings"])
    with pytest.raises(OneClassError, match="no rows"):
        check_two_classes(res.labels)


def test_one_class_fails_clearly() -> None:
    labels, summary = quiet_build(frame(daily("a", 0, 60) + daily("b", 0, 60)), CFG)
    assert labels.height > 0 and summary["positives"] == 0
    assert any("no churner" in w for w in summary["warnings"])  # type: ignore[union-attr]
    with pytest.raises(OneClassError, match="only label 0"):
        check_two_classes(labels)


def test_bad_config_is_named() -> None:
    with pytest.raises(ValueError, match=r"labels\.horizon_days"):
        build_labels(frame(daily("a", 0, 5)), replace(CFG, horizon_days=0))
    with pytest.raises(ValueError, match="no churn kind"):
        build_labels(
            frame(daily("a", 0, 5)),
            replace(CFG, use_cancellation=False, use_inactivity=False, use_downgrade=False),
        )


# ----------------------------------------------------------------------------------- properties
PAGES = ["NextSong", "NextSong", "Home", CANCEL, DOWN]
SPAN_DAYS = 70


@st.composite
def scenario(draw: st.DrawFn) -> tuple[pl.DataFrame, LabelsConfig]:
    """Random events of a few users over ~70 days and a random (small) churn definition."""
    rows: list[tuple[str, datetime, str]] = []
    reg: dict[str, datetime] = {}
    for u in range(draw(st.integers(1, 5))):
        user = f"u{u}"
        reg[user] = D0 + draw(st.integers(-30, 20)) * DAY
        minutes = draw(st.lists(st.integers(0, SPAN_DAYS * 1440), min_size=1, max_size=40))
        for m in minutes:
            rows.append((user, D0 + timedelta(minutes=m), draw(st.sampled_from(PAGES))))
    rows.append(("sentinel", D0 + SPAN_DAYS * DAY + timedelta(hours=1), "NextSong"))  # fixes the data end
    kinds = {name: draw(st.booleans()) for name in ("use_cancellation", "use_inactivity", "use_downgrade")}
    if not any(kinds.values()):  # a churn definition needs at least one kind (checked by LabelsConfig)
        kinds["use_inactivity"] = True
    cfg = LabelsConfig(
        first_cutoff_days=draw(st.integers(0, 10)),
        cutoff_every_days=draw(st.integers(1, 7)),
        horizon_days=draw(st.integers(1, 14)),
        inactivity_days=draw(st.integers(1, 14)),
        **kinds,
    )
    return frame(rows, reg), cfg


@st.composite
def mutation(draw: st.DrawFn) -> tuple[int, list[tuple[str, int, str]], float, str]:
    """A boundary (minutes from D0), events to add after it, a share to delete after it, a page swap."""
    boundary = draw(st.integers(0, SPAN_DAYS * 1440))
    adds = draw(
        st.lists(
            st.tuples(st.sampled_from(["u0", "u1", "u9"]), st.integers(0, 40 * 1440), st.sampled_from(PAGES)),
            max_size=10,
        )
    )
    return boundary, adds, draw(st.floats(0, 1)), draw(st.sampled_from(PAGES))


def mutate_after(events: pl.DataFrame, boundary: datetime, mut: tuple) -> pl.DataFrame:  # type: ignore[type-arg]
    """Add, delete and change events at or after ``boundary`` (never the sentinel)."""
    _, adds, delete_share, new_page = mut
    late = (pl.col("ts") >= boundary) & (pl.col("user_id") != "sentinel")
    keyed = events.with_row_index("_i")
    n_late = keyed.filter(late).height
    drop = set(keyed.filter(late)["_i"].to_list()[: int(n_late * delete_share)])
    changed = keyed.filter(~pl.col("_i").is_in(list(drop))).with_columns(
        pl.when(late).then(pl.lit(new_page)).otherwise(pl.col("page")).alias("page"),
        pl.when(late).then(pl.col("registration") + pl.duration(days=3)).otherwise("registration"),
    )
    extra = frame([(u, boundary + timedelta(minutes=m), p) for u, m, p in adds])
    return pl.concat([changed.drop("_i"), extra]).sort("user_id", "ts")


@settings(max_examples=150, deadline=None)
@given(data=scenario(), mut=mutation())
def test_property_events_after_the_window_never_change_a_label(
    data: tuple[pl.DataFrame, LabelsConfig],
    mut: tuple,  # type: ignore[type-arg]
) -> None:
    events, cfg = data
    boundary = D0 + timedelta(minutes=mut[0])
    before, _ = quiet_build(events, cfg)
    after, _ = quiet_build(mutate_after(events, boundary, mut), cfg)
    # every cutoff whose label window ends by the boundary must be labelled identically
    safe = [t for t in schedule_cutoffs(events, cfg) if label_known_at(t, cfg) <= boundary]
    a = before.filter(pl.col("cutoff").is_in(safe))
    b = after.filter(pl.col("cutoff").is_in(safe))
    assert a.equals(b), (cfg, boundary)


@settings(max_examples=100, deadline=None)
@given(data=scenario(), mut=mutation())
def test_property_eligibility_uses_only_the_past(
    data: tuple[pl.DataFrame, LabelsConfig],
    mut: tuple,  # type: ignore[type-arg]
) -> None:
    """Changing anything at or after T never changes who is labelled at T (only their label)."""
    events, cfg = data
    boundary = D0 + timedelta(minutes=mut[0])
    before, _ = quiet_build(events, cfg)
    after, _ = quiet_build(mutate_after(events, boundary, mut), cfg)
    common = set(before["cutoff"].to_list()) & set(after["cutoff"].to_list())
    for t in sorted(c for c in common if c <= boundary):
        assert before.filter(pl.col("cutoff") == t)["user_id"].to_list() == (
            after.filter(pl.col("cutoff") == t)["user_id"].to_list()
        )


@settings(max_examples=60, deadline=None)
@given(data=scenario())
def test_property_label_row_invariants(data: tuple[pl.DataFrame, LabelsConfig]) -> None:
    events, cfg = data
    labels, summary = quiet_build(events, cfg)
    assert labels.equals(quiet_build(events, cfg)[0])  # deterministic
    pos = labels.filter(pl.col("label") == 1)
    assert pos["churn_kind"].null_count() == 0 and pos["churn_ts"].null_count() == 0
    in_window = pl.col("churn_ts") < pl.col("cutoff") + pl.duration(days=cfg.horizon_days)
    assert pos.filter(~in_window).height == 0
    neg = labels.filter(pl.col("label") == 0)
    assert neg["churn_kind"].null_count() == neg.height
    assert labels.select("user_id", "cutoff").is_duplicated().sum() == 0
    assert summary["n_rows"] == labels.height and summary["positives"] == pos.height


@settings(max_examples=80, deadline=None)
@given(data=scenario())
def test_property_label_at_cutoffs_agrees_with_build_labels(data: tuple[pl.DataFrame, LabelsConfig]) -> None:
    """The keyed label function gives build_labels' rows; censored or ineligible keys get a null label."""
    from churnflow.labels import label_at_cutoffs

    events, cfg = data
    labels, _ = quiet_build(events, cfg)
    users = events["user_id"].unique().sort().to_list()
    scheduled = schedule_cutoffs(events, cfg)
    keys = pl.DataFrame(
        [(u, t) for t in scheduled for u in users],
        schema={"user_id": pl.String, "cutoff": pl.Datetime("ms", "UTC")},
        orient="row",
    )
    keyed = label_at_cutoffs(events, keys, cfg)
    assert keyed.select("user_id", "cutoff").equals(keys)  # same rows, same order
    got = keyed.filter(pl.col("label").is_not_null()).sort(["cutoff", "user_id"])
    assert got.select(labels.columns).equals(labels)
    assert (keyed["known_at"] == keyed["cutoff"] + timedelta(days=label_window_days(cfg))).all()


def test_label_at_cutoffs_reads_a_longer_future_when_told() -> None:
    """With ``data_end`` past the last event, a user who never returns is confirmed inactive."""
    from churnflow.labels import label_at_cutoffs

    events = frame(daily("gone", 0, 12) + daily("keep", 0, 12))
    keys = pl.DataFrame(
        {"user_id": ["gone"], "cutoff": [D0 + 10 * DAY]},
        schema={"user_id": pl.String, "cutoff": pl.Datetime("ms", "UTC")},
    )
    censored = label_at_cutoffs(events, keys, CFG)
    assert censored["label"][0] is None  # known only at day 22, the data end at day 12
    known = label_at_cutoffs(events, keys, CFG, data_end=D0 + 40 * DAY)
    assert known["label"][0] == 1 and known["churn_kind"][0] == "inactive"
    assert known["churn_ts"][0] == D0 + 13 * DAY
