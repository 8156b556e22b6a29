"""Point-in-time churn labels: one row per (user, cutoff T).

Conventions (see ``docs/data.md``): an event at ``ts < T`` is *before* T (what features may use); the
label window is ``[T, T + horizon)``. Churn kinds, each switched on in ``LabelsConfig``:

* ``cancel``: a ``Cancellation Confirmation`` event, dated at its ``ts``;
* ``downgrade``: a ``Submit Downgrade`` event, dated at its ``ts`` (optional);
* ``inactive``: no event for ``inactivity_days`` days. Dated the day (UTC midnight) after the last
  activity; it is known only once ``inactivity_days`` days have passed after that date.

Eligible at T: registered before T (or registration unknown), some activity before T, no cancellation
before T, and not known at T to be inactive (the day after the last activity before T is at least
``inactivity_days`` before T). Label 1 when the user's first churn after their last activity before T
is dated before ``T + horizon``: for ``inactive`` that date may precede T when the inactivity had
started but could not be known at T (the user is gone; the model scoring at T should say so).

When a label is known: the label at T depends on events before ``T + horizon + inactivity_days`` only
(``inactivity_days`` counts when inactivity churn is used). :func:`label_known_at` is the one place that
says it; every row of the label table carries it as ``known_at``, and the model splits use it: a training
or validation row is usable only if its ``known_at`` is at or before the first test cutoff. A cutoff whose
label is known only after the last event (right-censoring) is not used, and the summary says how many
eligible rows that removed. Property tests check this leakage bound.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from churnflow.config.labels import LabelsConfig
from churnflow.data.schema import CANCEL_CONFIRMATION_PAGE, SUBMIT_DOWNGRADE_PAGE

__all__ = [
    "INPUT_COLUMNS",
    "LABEL_DTYPES",
    "LabelResult",
    "LabelWarning",
    "OneClassError",
    "build_labels",
    "check_two_classes",
    "churn_events",
    "label_at_cutoffs",
    "label_known_at",
    "label_window_days",
    "make_cutoffs",
    "schedule_cutoffs",
]

_TS = pl.Datetime("ms", "UTC")
KINDS: tuple[str, ...] = ("cancel", "downgrade", "inactive")  # tie-break order of equal churn dates

#: The events-table columns the churn definition reads.
INPUT_COLUMNS: tuple[str, ...] = ("user_id", "ts", "page", "registration")

#: The label table's columns and dtypes.
LABEL_DTYPES: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "cutoff": _TS,
    "label": pl.Int8(),
    "churn_kind": pl.String(),
    "churn_ts": _TS,
    "horizon_days": pl.Int32(),
    "known_at": _TS,
}


class LabelWarning(UserWarning):
    """The label table is usable but degenerate (no cutoffs, no churners, one class)."""


class OneClassError(ValueError):
    """A label table holds a single class: a classifier cannot be trained on it."""


@dataclass
class LabelResult:
    """``labels`` (``LABEL_DTYPES``, sorted by cutoff, user_id) and the churn-definition ``summary``."""

    labels: pl.DataFrame
    summary: dict[str, Any]


def _user_events(events: pl.DataFrame) -> pl.DataFrame:
    """The events of identified users (``user_id``, ``ts``, ``page`` as string, ``registration``)."""
    missing = [c for c in INPUT_COLUMNS if c not in events.columns]
    if missing:
        raise ValueError(f"events: missing columns {missing}")
    ev = (
        events.lazy()
        .filter(pl.col("user_id").is_not_null() & (pl.col("user_id") != ""))
        .select(
            pl.col("user_id").cast(pl.String),
            pl.col("ts").cast(_TS),
            pl.col("page").cast(pl.String),
            pl.col("registration").cast(_TS),
        )
        .collect()
    )
    # the events table is already sorted by (user_id, ts): check it cheaply rather than sort again
    prev_user, prev_ts = pl.col("user_id").shift(1), pl.col("ts").shift(1)
    in_order = (pl.col("user_id") > prev_user) | (
        (pl.col("user_id") == prev_user) & (pl.col("ts") >= prev_ts)
    )
    if ev.height > 1 and not ev.select(in_order.fill_null(True).all()).item():
        ev = ev.sort(["user_id", "ts"])
    return ev


def _span(ev: pl.DataFrame) -> tuple[datetime, datetime] | None:
    if ev.height == 0:
        return None
    lo, hi = ev["ts"].min(), ev["ts"].max()
    assert isinstance(lo, datetime) and isinstance(hi, datetime)
    return lo, hi


def label_window_days(cfg: LabelsConfig) -> int:
    """Days after a cutoff until its label is known: horizon (+ inactivity days when inactivity is used)."""
    return cfg.horizon_days + (cfg.inactivity_days if cfg.use_inactivity else 0)


def label_known_at(cutoff: datetime, cfg: LabelsConfig) -> datetime:
    """When the label at ``cutoff`` becomes knowable: no event at or after this moment can change it.

    ``T + horizon_days (+ inactivity_days when inactivity churn is used)``: a cancellation or downgrade
    counts when dated before ``T + horizon``; an inactivity churn dated before ``T + horizon`` is confirmed
    by ``inactivity_days`` without events, i.e. before ``T + horizon + inactivity_days``.
    """
    return cutoff + timedelta(days=label_window_days(cfg))


def schedule_cutoffs(events: pl.DataFrame, cfg: LabelsConfig) -> list[datetime]:
    """Every cutoff of the schedule up to the last event, censored or not (UTC midnights).

    First cutoff: the day of the first event + ``first_cutoff_days``; then every ``cutoff_every_days``.
    """
    span = _span(_user_events(events))
    if span is None:
        return []
    start, end = span
    day0 = datetime(start.year, start.month, start.day, tzinfo=UTC)
    out: list[datetime] = []
    t = day0 + timedelta(days=cfg.first_cutoff_days)
    while t <= end:
        out.append(t)
        t += timedelta(days=cfg.cutoff_every_days)
    return out


def make_cutoffs(events: pl.DataFrame, cfg: LabelsConfig) -> list[datetime]:
    """The usable cutoffs: scheduled ones whose label window ends no later than the last event."""
    span = _span(_user_events(events))
    if span is None:
        return []
    return [t for t in schedule_cutoffs(events, cfg) if label_known_at(t, cfg) <= span[1]]


def churn_events(
    events: pl.DataFrame, cfg: LabelsConfig, *, data_end: datetime | None = None
) -> pl.DataFrame:
    """Candidate churn events: ``user_id``, ``anchor_ts`` (event it hangs on), ``churn_ts``, ``churn_kind``.

    Cancellations and downgrades are their own events. An inactivity churn hangs on an activity whose
    next activity comes ``inactivity_days`` or more after the following midnight (or never, when the
    data run that long: up to ``data_end``, by default the last event); it is dated that midnight.
    Inactivity the data cannot confirm is not listed.
    """
    ev = _user_events(events)
    schema = {"user_id": pl.String(), "anchor_ts": _TS, "churn_ts": _TS, "churn_kind": pl.String()}
    span = _span(ev)
    if span is None:
        return pl.DataFrame(schema=schema)
    end = span[1] if data_end is None else data_end
    parts: list[pl.DataFrame] = []
    for enabled, page, kind in (
        (cfg.use_cancellation, CANCEL_CONFIRMATION_PAGE, "cancel"),
        (cfg.use_downgrade, SUBMIT_DOWNGRADE_PAGE, "downgrade"),
    ):
        if enabled:
            parts.append(
                ev.filter(pl.col("page") == page).select(
                    "user_id",
                    pl.col("ts").alias("anchor_ts"),
                    pl.col("ts").alias("churn_ts"),
                    pl.lit(kind).alias("churn_kind"),
                )
            )
    if cfg.use_inactivity:
        gap = pl.duration(days=cfg.inactivity_days)
        day_after = pl.col("ts").dt.truncate("1d") + pl.duration(days=1)
        nxt = pl.when(pl.col("user_id").shift(-1) == pl.col("user_id")).then(pl.col("ts").shift(-1))
        parts.append(
            ev.with_columns(day_after.alias("churn_ts"), nxt.alias("_next"))
            .filter(
                (pl.col("_next") >= pl.col("churn_ts") + gap)
                | (pl.col("_next").is_null() & (pl.col("churn_ts") + gap <= pl.lit(end, dtype=_TS)))
            )
            .select(
                "user_id", pl.col("ts").alias("anchor_ts"), "churn_ts", pl.lit("inactive").alias("churn_kind")
            )
        )
    out = pl.concat([p.cast(schema) for p in parts]) if parts else pl.DataFrame(schema=schema)  # type: ignore[arg-type]
    return out.sort(["user_id", "anchor_ts", "churn_ts", "churn_kind"])


def _grid(
    ev: pl.DataFrame, keys: pl.DataFrame, cfg: LabelsConfig, data_end: datetime | None = None
) -> pl.DataFrame:
    """Eligible rows of ``keys`` with their first churn date and kind (``_churn_ts``, ``_kind``).

    ``keys``: ``user_id`` (string) and ``cutoff`` (``_TS``) rows, unique.
    """
    cut = keys.get_column("cutoff").unique().sort()
    # state just before each T, without touching every event per cutoff: bucket b of an event is the
    # number of cutoffs <= ts, so ts < cutoffs[k] iff b <= k; aggregate per (user, bucket), accumulate
    # over buckets, then take for (user, k) the last bucket <= k
    per_bucket = (
        ev.with_columns(cut.search_sorted(ev["ts"], side="right").cast(pl.Int64).alias("_b"))
        .group_by("user_id", "_b")
        .agg(
            pl.col("ts").max().alias("_last"),
            pl.col("registration").min().alias("_reg"),
            (pl.col("page") == CANCEL_CONFIRMATION_PAGE).sum().cast(pl.Int64).alias("_ncancel"),
        )
        .sort("user_id", "_b")
        .with_columns(
            pl.col("_last").cum_max().over("user_id"),
            # cum_min leaves nulls in place: fill forward, within the user from their first registration
            # on (a nested forward_fill().over() is ~5x slower with many users, e.g. the oracle's draws)
            pl.when(pl.col("_reg").is_not_null().cum_sum().over("user_id") > 0)
            .then(pl.col("_reg").cum_min().over("user_id").forward_fill())
            .alias("_reg"),
            pl.col("_ncancel").cum_sum().over("user_id"),
        )
    )
    grid_k = keys.with_columns(
        cut.search_sorted(keys["cutoff"], side="left").cast(pl.Int64).alias("_k")
    ).sort("_k")
    grid = grid_k.join_asof(
        per_bucket.sort("_b"),
        left_on="_k",
        right_on="_b",
        by="user_id",
        strategy="backward",
        check_sortedness=False,
    ).drop("_k", "_b")
    day_after_last = pl.col("_last").dt.truncate("1d") + pl.duration(days=1)
    known_inactive = day_after_last + pl.duration(days=cfg.inactivity_days) <= pl.col("cutoff")
    eligible = (pl.col("_reg").is_null() | (pl.col("_reg") < pl.col("cutoff"))) & pl.col(
        "_last"
    ).is_not_null()
    if cfg.use_cancellation:
        eligible &= pl.col("_ncancel") == 0
    if cfg.use_inactivity:
        eligible &= ~known_inactive
    grid = grid.filter(eligible)

    candidates = churn_events(ev, cfg, data_end=data_end)
    found: list[pl.Expr] = []
    for kind in KINDS:
        cand = candidates.filter(pl.col("churn_kind") == kind).select(
            "user_id", pl.col("anchor_ts").alias("_anchor"), pl.col("churn_ts").alias(f"_{kind}")
        )
        # inactivity: first candidate hanging on the last activity before T or later; others: at/after T
        left_on = "_last" if kind == "inactive" else "cutoff"
        grid = grid.sort(left_on).join_asof(
            cand.sort("_anchor"),
            left_on=left_on,
            right_on="_anchor",
            by="user_id",
            strategy="forward",
            allow_exact_matches=True,
            check_sortedness=False,
        )
        grid = grid.drop("_anchor")
        found.append(pl.col(f"_{kind}"))
    first = pl.min_horizontal(found)
    kind_expr = pl.when(pl.lit(False)).then(pl.lit(None, dtype=pl.String))
    for kind in KINDS:
        kind_expr = kind_expr.when(pl.col(f"_{kind}") == first).then(pl.lit(kind))
    return grid.with_columns(first.alias("_churn_ts"), kind_expr.otherwise(None).alias("_kind"))


def _label_columns(cfg: LabelsConfig) -> list[pl.Expr]:
    """``label``, ``churn_kind``, ``churn_ts``, ``horizon_days``, ``known_at`` from a ``_grid`` frame."""
    horizon = pl.duration(days=cfg.horizon_days)
    is_pos = pl.col("_churn_ts").is_not_null() & (pl.col("_churn_ts") < pl.col("cutoff") + horizon)
    return [
        is_pos.cast(pl.Int8).alias("label"),
        pl.when(is_pos).then(pl.col("_kind")).alias("churn_kind"),
        pl.when(is_pos).then(pl.col("_churn_ts")).alias("churn_ts"),
        pl.lit(cfg.horizon_days, dtype=pl.Int32).alias("horizon_days"),
        (pl.col("cutoff") + pl.duration(days=label_window_days(cfg))).alias("known_at"),
    ]


def label_at_cutoffs(
    events: pl.DataFrame, keys: pl.DataFrame, cfg: LabelsConfig, *, data_end: datetime | None = None
) -> pl.DataFrame:
    """Label exactly the given (``user_id``, ``cutoff``) rows by the rules of :func:`build_labels`.

    Inputs: events (``INPUT_COLUMNS``), ``keys`` (unique ``user_id``, ``cutoff`` rows), the churn
    definition, and ``data_end`` — how far the events are complete (default: the last event). Output:
    ``keys`` in their order plus ``LABEL_DTYPES`` columns; ``label`` is null where the row is not eligible
    at its cutoff or its label is known only after ``data_end`` (censored). Used by the simulator's
    Monte-Carlo oracle to apply the project's own label function to re-simulated futures.
    """
    for col in ("user_id", "cutoff"):
        if col not in keys.columns:
            raise ValueError(f"keys: missing column {col!r}")
    ev = _user_events(events)
    base = keys.select(pl.col("user_id").cast(pl.String), pl.col("cutoff").cast(_TS)).with_row_index("_row")
    span = _span(ev)
    end = data_end if data_end is not None else (span[1] if span else None)
    out_schema = {k: v for k, v in LABEL_DTYPES.items() if k not in ("user_id", "cutoff")}
    if span is None or base.height == 0:
        empty = base.with_columns([pl.lit(None, dtype=t).alias(k) for k, t in out_schema.items()])
        return empty.drop("_row")
    grid = _grid(ev, base.select("user_id", "cutoff"), cfg, data_end=end)
    labelled = grid.select("user_id", "cutoff", *_label_columns(cfg))
    if end is not None:
        censored = pl.col("known_at") > pl.lit(end, dtype=_TS)
        label = pl.when(censored).then(None).otherwise(pl.col("label"))
        labelled = labelled.with_columns(label.alias("label"))
    out = base.join(labelled, on=["user_id", "cutoff"], how="left", coalesce=True).sort("_row").drop("_row")
    return out.with_columns(
        (pl.col("cutoff") + pl.duration(days=label_window_days(cfg))).alias("known_at"),
        pl.lit(cfg.horizon_days, dtype=pl.Int32).alias("horizon_days"),
    ).cast({k: v for k, v in LABEL_DTYPES.items()})  # type: ignore[arg-type]


def build_labels(events: pl.DataFrame, cfg: LabelsConfig) -> LabelResult:
    """Events table → point-in-time labels per (user, cutoff) and the churn-definition summary.

    Output rows: eligible users at each usable cutoff (``make_cutoffs``); ``label`` 1 when the first
    churn is dated before ``cutoff + horizon_days`` (then ``churn_kind``/``churn_ts`` are set, else null).
    Same events + config → same table. Warns (``LabelWarning``) and still returns when the table is
    empty, has no churner or has one class; the warnings are also listed in ``summary["warnings"]``.
    """
    ev = _user_events(events)
    scheduled = schedule_cutoffs(ev, cfg)
    usable = make_cutoffs(ev, cfg)
    censored = [t for t in scheduled if t not in usable]
    grid = None
    if scheduled:
        keys = ev.select(pl.col("user_id").unique()).join(
            pl.DataFrame({"cutoff": pl.Series(sorted(scheduled), dtype=_TS)}), how="cross"
        )
        grid = _grid(ev, keys, cfg)
    if grid is None:
        labels = pl.DataFrame(schema=LABEL_DTYPES)
        censored_rows = 0
    else:
        censored_rows = grid.filter(pl.col("cutoff").is_in(censored)).height if censored else 0
        labels = (
            grid.filter(pl.col("cutoff").is_in(usable))
            .select("user_id", "cutoff", *_label_columns(cfg))
            .cast(LABEL_DTYPES)  # type: ignore[arg-type]
            .sort(["cutoff", "user_id"])
        )
    summary = _summary(labels, ev, cfg, scheduled, censored, censored_rows)
    for message in summary["warnings"]:
        warnings.warn(message, LabelWarning, stacklevel=2)
    return LabelResult(labels=labels, summary=summary)


def _days(ev: pl.DataFrame) -> float:
    span = _span(ev)
    return round((span[1] - span[0]).total_seconds() / 86400, 1) if span else 0.0


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _summary(
    labels: pl.DataFrame,
    ev: pl.DataFrame,
    cfg: LabelsConfig,
    scheduled: list[datetime],
    censored: list[datetime],
    censored_rows: int,
) -> dict[str, Any]:
    """The churn-definition summary (``reports/churn_definition.json``)."""
    per_cutoff = (
        labels.group_by("cutoff")
        .agg(
            pl.len().alias("n_rows"),
            pl.col("label").cast(pl.Int64).sum().alias("positives"),
            *[(pl.col("churn_kind") == k).sum().alias(k) for k in KINDS],
        )
        .sort("cutoff")
    )
    n_rows = labels.height
    positives = int(labels["label"].cast(pl.Int64).sum()) if n_rows else 0
    span = _span(ev)
    n_cancel = ev.filter(pl.col("page") == CANCEL_CONFIRMATION_PAGE).height
    warns: list[str] = []
    if cfg.use_cancellation and n_cancel == 0:
        warns.append(f"no '{CANCEL_CONFIRMATION_PAGE}' event in the data: cancellation churn never occurs")
    if n_rows == 0:
        warns.append(
            f"no usable cutoff: {len(scheduled)} scheduled, all censored (a label needs "
            f"{label_window_days(cfg)} days of data after its cutoff, the data span "
            f"{_days(ev)} days) - the label table is empty"
        )
    elif positives == 0:
        warns.append("no churner in the label table (every label is 0): a classifier cannot be trained")
    elif positives == n_rows:
        warns.append("every label is 1: a classifier cannot be trained")
    return {
        "definition": asdict(cfg),
        "label_window_days": label_window_days(cfg),
        "data_start": _iso(span[0]) if span else None,
        "data_end": _iso(span[1]) if span else None,
        "n_rows": n_rows,
        "n_users": labels["user_id"].n_unique() if n_rows else 0,
        "n_cutoffs": per_cutoff.height,
        "positives": positives,
        "churn_rate": positives / n_rows if n_rows else None,
        "per_cutoff": [
            {
                "cutoff": _iso(row["cutoff"]),
                "n_rows": row["n_rows"],
                "positives": row["positives"],
                "churn_rate": row["positives"] / row["n_rows"],
                **{k: row[k] for k in KINDS},
            }
            for row in per_cutoff.iter_rows(named=True)
        ],
        "per_kind": {k: int((labels["churn_kind"] == k).sum()) if n_rows else 0 for k in KINDS},
        "censored": {
            "n_cutoffs": len(censored),
            "n_rows": censored_rows,
            "cutoffs": [_iso(t) for t in censored],
        },
        "cancellation_events": n_cancel,
        "warnings": warns,
    }


def check_two_classes(labels: pl.DataFrame, what: str = "label table") -> None:
    """Raise ``OneClassError`` with a clear message when ``labels`` holds fewer than two classes."""
    counts = labels["label"].value_counts() if labels.height else None
    if counts is None or counts.height < 2:
        only = "no rows" if counts is None else f"only label {counts['label'][0]} ({labels.height} rows)"
        raise OneClassError(
            f"{what}: {only}; training needs both churners and non-churners — check the churn definition "
            "(conf/labels) and the data span (reports/churn_definition.json)"
        )
