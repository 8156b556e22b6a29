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

The label at T depends on events before ``T + horizon + inactivity_days`` only (``label_window_end``);
a cutoff whose window ends after the last event (right-censoring) is not used, and the summary says how
many eligible rows that removed. Property tests check this leakage bound.
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
    "label_window_end",
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


def _validate(cfg: LabelsConfig) -> None:
    """Fail by field name on a configuration that cannot define labels."""
    for name in ("cutoff_every_days", "horizon_days", "inactivity_days"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"labels.{name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.first_cutoff_days < 0:
        raise ValueError(f"labels.first_cutoff_days must be >= 0, got {cfg.first_cutoff_days}")
    if not (cfg.use_cancellation or cfg.use_inactivity or cfg.use_downgrade):
        raise ValueError("labels: no churn kind enabled (use_cancellation, use_inactivity, use_downgrade)")


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


def label_window_end(cutoff: datetime, cfg: LabelsConfig) -> datetime:
    """The last moment the label at ``cutoff`` looks at: T + horizon (+ inactivity days when used)."""
    days = cfg.horizon_days + (cfg.inactivity_days if cfg.use_inactivity else 0)
    return cutoff + timedelta(days=days)


def schedule_cutoffs(events: pl.DataFrame, cfg: LabelsConfig) -> list[datetime]:
    """Every cutoff of the schedule up to the last event, censored or not (UTC midnights).

    First cutoff: the day of the first event + ``first_cutoff_days``; then every ``cutoff_every_days``.
    """
    _validate(cfg)
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
    return [t for t in schedule_cutoffs(events, cfg) if label_window_end(t, cfg) <= span[1]]


def churn_events(events: pl.DataFrame, cfg: LabelsConfig) -> pl.DataFrame:
    """Candidate churn events: ``user_id``, ``anchor_ts`` (event it hangs on), ``churn_ts``, ``churn_kind``.

    Cancellations and downgrades are their own events. An inactivity churn hangs on an activity whose
    next activity comes ``inactivity_days`` or more after the following midnight (or never, when the
    data run that long); it is dated that midnight. Inactivity the data cannot confirm is not listed.
    """
    _validate(cfg)
    ev = _user_events(events)
    schema = {"user_id": pl.String(), "anchor_ts": _TS, "churn_ts": _TS, "churn_kind": pl.String()}
    span = _span(ev)
    if span is None:
        return pl.DataFrame(schema=schema)
    end = span[1]
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


def _grid(ev: pl.DataFrame, cutoffs: list[datetime], cfg: LabelsConfig) -> pl.DataFrame:
    """Eligible (user, cutoff) rows with their first churn date and kind (``_churn_ts``, ``_kind``)."""
    cut = pl.Series("cutoff", sorted(cutoffs), dtype=_TS)
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
            pl.col("_reg").cum_min().over("user_id").forward_fill().over("user_id"),
            pl.col("_ncancel").cum_sum().over("user_id"),
        )
    )
    grid_k = (
        per_bucket.select(pl.col("user_id").unique())
        .join(pl.DataFrame({"_k": range(len(cut)), "cutoff": cut}), how="cross")
        .sort("_k")
    )
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

    candidates = churn_events(ev, cfg)
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


def build_labels(events: pl.DataFrame, cfg: LabelsConfig) -> LabelResult:
    """Events table → point-in-time labels per (user, cutoff) and the churn-definition summary.

    Output rows: eligible users at each usable cutoff (``make_cutoffs``); ``label`` 1 when the first
    churn is dated before ``cutoff + horizon_days`` (then ``churn_kind``/``churn_ts`` are set, else null).
    Same events + config → same table. Warns (``LabelWarning``) and still returns when the table is
    empty, has no churner or has one class; the warnings are also listed in ``summary["warnings"]``.
    """
    _validate(cfg)
    ev = _user_events(events)
    scheduled = schedule_cutoffs(ev, cfg)
    usable = make_cutoffs(ev, cfg)
    censored = [t for t in scheduled if t not in usable]
    grid = _grid(ev, scheduled, cfg) if scheduled else None
    horizon = pl.duration(days=cfg.horizon_days)
    if grid is None:
        labels = pl.DataFrame(schema=LABEL_DTYPES)
        censored_rows = 0
    else:
        censored_rows = grid.filter(pl.col("cutoff").is_in(censored)).height if censored else 0
        is_pos = pl.col("_churn_ts").is_not_null() & (pl.col("_churn_ts") < pl.col("cutoff") + horizon)
        labels = (
            grid.filter(pl.col("cutoff").is_in(usable))
            .select(
                "user_id",
                "cutoff",
                is_pos.cast(pl.Int8).alias("label"),
                pl.when(is_pos).then(pl.col("_kind")).alias("churn_kind"),
                pl.when(is_pos).then(pl.col("_churn_ts")).alias("churn_ts"),
                pl.lit(cfg.horizon_days, dtype=pl.Int32).alias("horizon_days"),
            )
            .cast(LABEL_DTYPES)  # type: ignore[arg-type]
            .sort(["cutoff", "user_id"])
        )
    summary = _summary(labels, ev, cfg, scheduled, censored, censored_rows)
    for message in summary["warnings"]:
        warnings.warn(message, LabelWarning, stacklevel=2)
    return LabelResult(labels=labels, summary=summary)


_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


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
            f"{(label_window_end(_EPOCH, cfg) - _EPOCH).days} days of data after its cutoff, the data span "
            f"{_days(ev)} days) - the label table is empty"
        )
    elif positives == 0:
        warns.append("no churner in the label table (every label is 0): a classifier cannot be trained")
    elif positives == n_rows:
        warns.append("every label is 1: a classifier cannot be trained")
    return {
        "definition": asdict(cfg),
        "label_window_days": cfg.horizon_days + (cfg.inactivity_days if cfg.use_inactivity else 0),
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
