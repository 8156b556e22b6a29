"""The Monte-Carlo oracle: P(label = 1 | the simulator's full latent state at the cutoff).

For each (user, cutoff T) row, the user's future after T is re-simulated ``n_draws`` times from the latent
state at T with the simulator's own engine (``churnflow.simulate.world``: ``step_satisfaction``,
``daily_hazard``, ``first_passage_day``, ``churn_kinds``, ``renew_sessions``, ``final_session_start``,
``draw_final_songs``, with the world's scenario regime), and the project's own label function
(``churnflow.labels.label_at_cutoffs``, with the run's ``LabelsConfig``: any horizon, inactivity or
downgrade setting) labels every draw. ``p`` is the share of draws labelled 1.

The latent state at T (T a UTC midnight; day c = T's day index from the world's start) is
* the traits: engagement ``e``, satisfaction trait ``z``, paid at the start (free users have a lower
  satisfaction mean and a higher hazard), registration (tenure), and from when the hazard runs (a newcomer
  becomes a customer at their first session);
* the satisfaction of the day that ended at T (day c-1); day c's satisfaction is drawn afresh;
* whether the user has decided to leave before T, and how (cancel or silent). If not, the churn process
  restarts at T with a fresh Exp(1) threshold, which is exact because it is memoryless;
* the level after the last session that started before T;
* the session renewal process, which is not memoryless: the last session that started before T (its
  start, the engine's end, what it ends with, the mean of the gamma gap after it). A session still in
  progress at T runs its course: its logged-in events after T are its recorded ones (its last event, with
  its Submit Downgrade or Cancellation Confirmation, if any), and the gap after it is drawn when it ends.
  Otherwise the next gap G is drawn from its gamma law conditioned on G > T - (end of the last session);
* the activity record before T (the last logged-in event before T, registration, a cancellation before
  T), which the label function reads.
Nothing drawn at or after T is read: not the realised satisfaction after T, not the realised churn
threshold, not the next session already scheduled in the realised world.

Re-simulated futures hold only the events the label function reads: per session its first logged-in event
(at its start) and its last one (with Submit Downgrade / Cancellation Confirmation where the session ends
with one); the last event's offset from the start is drawn from the event expansion's law (page counts
from ``page_rates``, song lengths from the world's catalogue, other pages 3-40 s) with the sums of
durations taken as normal (exact mean and variance). Draws run until the label is knowable
(``label_known_at``), so any label configuration is served.

Monte-Carlo error: per row ``se = sd(draws) / sqrt(n_draws)`` (at most 0.5 / sqrt(n_draws)).
"""

from __future__ import annotations

import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np
import polars as pl

from churnflow.config.labels import LabelsConfig
from churnflow.simulate.events import LOGOUT_COLUMN, page_rates
from churnflow.simulate.presets import DAY_MS, Preset, Regime, WorldParams, get_preset, get_regime
from churnflow.simulate.truth import ORACLE_COLUMNS, TRUTH_COLUMNS
from churnflow.simulate.world import (
    KIND_CANCEL,
    KIND_NONE,
    KIND_SILENT,
    SESSION_DOWNGRADE,
    SESSION_FINAL,
    churn_kinds,
    daily_hazard,
    days_to_ms,
    draw_final_songs,
    draw_gap,
    draw_gap_beyond,
    final_session_start,
    first_passage_day,
    hazard_from,
    renew_sessions,
    step_satisfaction,
)
from churnflow.utils.progress import progress as progress_bar

__all__ = ["OracleResult", "latent_state_features", "latent_states", "oracle_probabilities"]

_TS = pl.Datetime("ms", "UTC")
#: pseudo-users (rows x draws) labelled per call of the label function: bounds memory, not results
_BLOCK_PSEUDO_USERS = 131_072
_OTHER_SECONDS_MEAN = 21.5  # events that are not songs last Uniform{3..40} seconds
_OTHER_SECONDS_VAR = (38**2 - 1) / 12.0
_KIND_CODE = {None: KIND_NONE, "cancel": KIND_CANCEL, "silent": KIND_SILENT}
#: pages of the pseudo-events: any activity, and the two pages the churn kinds read
_PAGES = pl.Series("page", ["NextSong", "Submit Downgrade", "Cancellation Confirmation"], dtype=pl.String)
_PAGE_ACTIVITY, _PAGE_DOWNGRADE, _PAGE_CANCEL = 0, 1, 2


@dataclass(frozen=True)
class OracleResult:
    """``table``: the keys plus ``p`` (null when the row is not eligible at its cutoff) and ``se`` (its
    Monte-Carlo standard error); ``summary``: draws, seed, mean MC error, rows, eligible rows, seconds."""

    table: pl.DataFrame
    summary: dict[str, Any]


# ---------------------------------------------------------------------------------------------------------
# the latent state at a cutoff


@dataclass
class _State:
    """Latent state of m (user, cutoff) rows; times in days from the world's start."""

    user_id: np.ndarray  # str
    cutoff_ms: np.ndarray
    c: np.ndarray  # int64: the cutoff's day index
    e: np.ndarray
    z: np.ndarray
    paid0: np.ndarray
    reg_day: np.ndarray
    registration_ms: np.ndarray  # -1: unknown
    customer_from: np.ndarray
    sat_prev: np.ndarray  # satisfaction of day c-1
    decided: np.ndarray  # bool: decided to leave before T
    decision_day: np.ndarray  # nan when not decided before T
    decision_kind: np.ndarray  # int8 KIND_*
    has_session: np.ndarray  # bool: some session started before T
    last_start: np.ndarray
    last_end: np.ndarray
    last_last_ms: np.ndarray  # last logged-in event of that session
    last_kind: np.ndarray  # int8 SESSION_*
    paid: np.ndarray  # level after the last session that started before T
    last_gap_mean: np.ndarray
    final_started: np.ndarray  # bool: the cancelling session started before T
    last_activity_ms: np.ndarray  # last logged-in event before T; -1 when none
    cancel_before_ms: np.ndarray  # Cancellation Confirmation before T; -1 when none


def _check_truth(truth: pl.DataFrame) -> None:
    missing = [c for c in (*TRUTH_COLUMNS, *ORACLE_COLUMNS) if c not in truth.columns]
    if missing:
        raise ValueError(
            f"ground truth lacks columns {missing}: it predates the Monte-Carlo oracle; re-simulate the data "
            "(churnflow simulate) to write a sidecar that records the latent state"
        )


def _check_keys(keys: pl.DataFrame) -> pl.DataFrame:
    for col in ("user_id", "cutoff"):
        if col not in keys.columns:
            raise ValueError(f"keys lack column {col!r} (need user_id, cutoff)")
    out = keys.select(pl.col("user_id").cast(pl.String), pl.col("cutoff").cast(_TS))
    if out["cutoff"].null_count():
        raise ValueError("keys: null cutoff")
    return out


def _world_of(truth: pl.DataFrame) -> tuple[Preset, Regime, int]:
    """The preset, regime and seed the sidecar was simulated with (constant columns)."""
    values = truth.select(
        pl.col("preset").first(),
        pl.col("scenario").first(),
        pl.col("change_day").first(),
        pl.col("seed").first(),
    ).row(0)
    preset, scenario, change_day, seed = values
    return get_preset(preset), get_regime(scenario, int(change_day)), int(seed)


def latent_states(truth: pl.DataFrame, keys: pl.DataFrame) -> _State:
    """The latent state of each (``user_id``, ``cutoff``) row of ``keys`` (see the module docstring).

    Raises ValueError naming users missing from the truth, cutoffs that are not UTC midnights, or cutoffs
    outside the simulated days.
    """
    _check_truth(truth)
    keys = _check_keys(keys)
    start_ms = int(truth["hazard_start"].cast(_TS).dt.epoch("ms")[0])
    cut_ms = keys["cutoff"].dt.epoch("ms").to_numpy()
    rel = cut_ms - start_ms
    if (rel % DAY_MS != 0).any():
        bad = keys.filter(pl.Series(rel % DAY_MS != 0))["cutoff"][0]
        raise ValueError(f"cutoff {bad} is not a UTC midnight: the oracle's state is recorded per UTC day")
    c = rel // DAY_MS
    n_hazard = len(truth["satisfaction"][0])
    if (c < 1).any() or (c > n_hazard).any():
        raise ValueError(f"cutoffs must fall on days 1..{n_hazard} of the simulated world")
    index = {u: i for i, u in enumerate(truth["user_id"].to_list())}
    users = keys["user_id"].to_list()
    unknown = sorted({u for u in users if u not in index})
    if unknown:
        raise ValueError(f"users not in the ground truth: {unknown[:5]} ({len(unknown)} in all)")
    rows = np.fromiter((index[u] for u in users), dtype=np.int64, count=len(users))
    m = rows.size
    t = truth.select(
        "engagement", "sat_trait", "paid_at_start", "paid_at_window_start", "reg_day", "first_session_day",
        "decision_day",
        "decision_kind", pl.col("registration").cast(_TS).dt.epoch("ms").fill_null(-1).alias("reg_ms"),
    )[rows]  # fmt: skip
    sat_prev = _sat_at(truth, rows, c - 1)
    reg_day = t["reg_day"].to_numpy()
    decision = t["decision_day"].fill_null(np.nan).to_numpy()
    decided = ~np.isnan(decision) & (decision < c)
    kind = np.array([_KIND_CODE[k] for k in t["decision_kind"].to_list()], dtype=np.int8)

    # the last session started before T, and the last activity / cancellation before T
    row_ix = pl.Series("_r", np.arange(m))
    sess = (
        truth.select(
            "session_start_day", "session_end_day", "session_last_ms", "session_kind", "session_paid_after",
            "session_gap_mean",
        )[rows]
        .with_columns(row_ix, pl.Series("_c", c))
        .explode(
            "session_start_day", "session_end_day", "session_last_ms", "session_kind", "session_paid_after",
            "session_gap_mean",
        )
        .filter(pl.col("session_start_day") < pl.col("_c"))
    )  # fmt: skip
    final_before = (
        sess.filter(pl.col("session_kind") == SESSION_FINAL)
        .group_by("_r")
        .agg(pl.col("session_last_ms").max().alias("_cancel_ms"))
    )
    last = sess.group_by("_r").agg(pl.all().sort_by("session_start_day").last())
    last = (
        pl.DataFrame({"_r": np.arange(m)})
        .join(last, on="_r", how="left")
        .join(final_before, on="_r", how="left")
    )
    day_ms = np.asarray(cut_ms)
    act = (
        truth.select("active_day", "active_day_last_ms")[rows]
        .with_columns(row_ix, pl.Series("_c", c))
        .explode("active_day", "active_day_last_ms")
        .filter(pl.col("active_day") < pl.col("_c"))
        .group_by("_r")
        .agg(pl.col("active_day_last_ms").max().alias("_last_ms"))
    )
    act = pl.DataFrame({"_r": np.arange(m)}).join(act, on="_r", how="left")
    has = last["session_start_day"].is_not_null().to_numpy()
    cancel_ms = last["_cancel_ms"].fill_null(-1).to_numpy()
    return _State(
        user_id=np.asarray(users, dtype=object),
        cutoff_ms=day_ms,
        c=c.astype(np.int64),
        e=t["engagement"].to_numpy(),
        z=t["sat_trait"].to_numpy(),
        paid0=t["paid_at_start"].to_numpy().astype(bool),
        reg_day=reg_day,
        registration_ms=t["reg_ms"].to_numpy(),
        customer_from=hazard_from(reg_day, t["first_session_day"].to_numpy()),
        sat_prev=sat_prev,
        decided=decided,
        decision_day=np.where(decided, decision, np.nan),
        decision_kind=np.where(decided, kind, KIND_NONE).astype(np.int8),
        has_session=has,
        last_start=last["session_start_day"].fill_null(np.nan).to_numpy(),
        last_end=last["session_end_day"].fill_null(-np.inf).to_numpy(),
        last_last_ms=last["session_last_ms"].fill_null(-1).to_numpy(),
        last_kind=last["session_kind"].fill_null(0).to_numpy().astype(np.int8),
        paid=np.where(
            has, last["session_paid_after"].fill_null(False).to_numpy(), t["paid_at_window_start"].to_numpy()
        ),
        last_gap_mean=last["session_gap_mean"].fill_null(np.nan).to_numpy(),
        final_started=cancel_ms >= 0,
        last_activity_ms=act["_last_ms"].fill_null(-1).to_numpy(),
        cancel_before_ms=np.where(cancel_ms < cut_ms, cancel_ms, -1),
    )


def _sat_at(truth: pl.DataFrame, rows: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Satisfaction of ``day`` for the truth rows ``rows``."""
    sat = truth["satisfaction"]
    width = len(sat[0])
    flat = sat.explode().to_numpy()
    return flat[rows * width + np.clip(day, 0, width - 1)]


# ---------------------------------------------------------------------------------------------------------
# re-simulated futures


@lru_cache(maxsize=8)
def _song_seconds(seed: int, params: WorldParams) -> tuple[float, float]:
    """Mean and variance of a NextSong's duration (rounded length) under the catalogue's popularity law."""
    from churnflow.simulate.engine import catalogue_for

    cat = catalogue_for(seed, params)
    n = cat.n_songs
    length = np.round(cat.length.head(n).to_numpy())
    cdf = (np.arange(1, n + 1) / n) ** (1.0 / params.song_popularity_exponent)
    prob = np.diff(np.concatenate([[0.0], cdf]))
    mean = float((prob * length).sum())
    return mean, float((prob * length**2).sum() - mean**2)


def _last_event_offset_s(
    rng: np.random.Generator,
    regime: Regime,
    song: tuple[float, float],
    n_songs: np.ndarray,
    sat: np.ndarray,
    paid: np.ndarray,
    day: np.ndarray,
    special: np.ndarray,
) -> np.ndarray:
    """Seconds from a session's start to its last logged-in event, drawn from the event expansion's law.

    Page counts as in ``events.page_counts`` (Poisson around ``page_rates``, one Logout added), 2 + Poisson
    Logged Out events after each Logout, 2 closing pages when the session ends with an upgrade, downgrade
    or cancellation (``special``; then the last page closes it). Without one, the last logged-in event is
    the last random page (a song, a Logout or another page, in proportion to their counts). The durations
    of the events before it are summed with a normal approximation (exact mean and variance).
    """
    k = n_songs.size
    lam = page_rates(regime, n_songs, sat, paid, day)
    logouts = 1 + rng.poisson(lam[:, LOGOUT_COLUMN])
    others = rng.poisson(lam.sum(axis=1) - lam[:, LOGOUT_COLUMN])
    extra = np.broadcast_to(np.asarray(regime.value("anon_extra_per_logout", day), dtype=np.float64), (k,))
    anon = 2 * logouts + rng.poisson(extra * logouts)
    n_random = n_songs + logouts + others
    u = rng.random(k) * n_random
    last_song = ~special & (u < n_songs)
    last_logout = ~special & ~last_song & (u < n_songs + logouts)
    trailing = np.where(last_logout, 2 + rng.poisson(extra), 0)  # the last Logout's Logged Out block
    songs_before = n_songs - last_song
    other_before = others + logouts + anon + 2 * special - 1 + last_song - trailing
    other_before = np.maximum(other_before, 0)
    mean = songs_before * song[0] + other_before * _OTHER_SECONDS_MEAN
    sd = np.sqrt(songs_before * song[1] + other_before * _OTHER_SECONDS_VAR)
    return np.maximum(np.round(mean + sd * rng.standard_normal(k)), 0.0)


def _future_events(
    rng: np.random.Generator,
    st: _State,
    sel: np.ndarray,
    n_draws: int,
    window_days: int,
    regime: Regime,
    preset: Preset,
    start_ms: int,
    song: tuple[float, float],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Events and keys of the pseudo-users (row ``sel[i]``, draw j) → id ``i * n_draws + j``.

    Past: the last activity before T (and a cancellation before T). Present: the rest of a session in
    progress at T. Future: sessions re-simulated with the engine until ``T + window_days``.
    """
    m = sel.size * n_draws
    r = np.repeat(sel, n_draws)  # row of each pseudo-user
    c = st.c[r]
    cutoff_ms = st.cutoff_ms[r]
    t_cut = c.astype(np.float64)
    horizon = t_cut + window_days
    width = window_days + 1
    e, z, free, paid0 = st.e[r], st.z[r], ~st.paid0[r], st.paid0[r]
    # satisfaction and the churn process from T (fresh innovations, fresh Exp(1) threshold)
    sat = step_satisfaction(regime, st.sat_prev[r], z, free, rng.standard_normal((width, m)), c)
    hazard = daily_hazard(regime, sat, c, e, free, st.reg_day[r], st.customer_from[r], preset.churn_boost)
    churn_col = first_passage_day(hazard, rng.exponential(1.0, m))
    fresh = ~st.decided[r] & (churn_col >= 0)
    churn_day = c + np.maximum(churn_col, 0)
    decision = np.where(st.decided[r], st.decision_day[r], np.where(fresh, churn_day + rng.random(m), np.inf))
    kind = np.where(
        st.decided[r],
        st.decision_kind[r],
        np.where(fresh, churn_kinds(regime, rng.random(m), churn_day, paid0), KIND_NONE),
    )
    # the session renewal process from the state at T
    has = st.has_session[r]
    last_end = st.last_end[r]
    in_progress = has & (last_end > t_cut)
    last_day = np.floor(np.nan_to_num(st.last_start[r], nan=0.0)).astype(np.int64)
    shape = regime.value("gap_shape", last_day)
    gap_mean = st.last_gap_mean[r]
    gap_mean = np.where(np.isnan(gap_mean), 1.0, gap_mean)  # final sessions have no gap (user gone)
    gap_free = draw_gap(rng, shape, gap_mean)
    gap_cond = draw_gap_beyond(rng, shape, gap_mean, np.where(has, t_cut - last_end, 0.0))
    t_next = np.where(in_progress, last_end + gap_free, last_end + gap_cond)
    t_next = np.where(has, t_next, np.inf)  # no session before T: not a customer the label can see
    stop = np.minimum(decision, horizon)
    draws, end_after, paid_end = renew_sessions(rng, regime, e, sat, c, t_next, stop, st.paid[r], last_end)
    # the cancelling session
    cancel = (kind == KIND_CANCEL) & ~st.final_started[r]
    ci = np.flatnonzero(cancel)
    t_c = final_session_start(decision[ci], end_after[ci])
    ok = t_c < horizon[ci]
    ci, t_c = ci[ok], t_c[ok]
    day_c = np.floor(t_c).astype(np.int64)
    n_final = draw_final_songs(rng, regime, day_c)
    sat_c = sat[ci, np.clip(day_c - c[ci], 0, width - 1)]
    # last logged-in event of each future session
    rows_s = np.concatenate([draws.row, ci])
    start = np.concatenate([draws.start, t_c])
    n_songs = np.concatenate([draws.n_songs, n_final])
    sat_s = np.concatenate([draws.sat, sat_c])
    paid_s = np.concatenate([draws.paid, paid_end[ci]])
    special = np.concatenate([draws.downgrade | draws.upgrade, np.ones(ci.size, dtype=bool)])
    last_page = np.concatenate(
        [np.where(draws.downgrade, _PAGE_DOWNGRADE, _PAGE_ACTIVITY), np.full(ci.size, _PAGE_CANCEL)]
    ).astype(np.int8)
    start_ms_s = days_to_ms(preset, start)
    offset = _last_event_offset_s(
        rng, regime, song, n_songs, sat_s, paid_s, np.floor(start).astype(np.int64), special
    )
    last_ms_s = start_ms_s + offset.astype(np.int64) * 1000
    # events: past, present, future
    past = st.last_activity_ms[r] >= 0
    cancel_past = st.cancel_before_ms[r] >= 0
    present = in_progress & (st.last_last_ms[r] >= cutoff_ms)
    pres_page = np.where(
        st.last_kind[r] == SESSION_FINAL,
        _PAGE_CANCEL,
        np.where(st.last_kind[r] == SESSION_DOWNGRADE, _PAGE_DOWNGRADE, _PAGE_ACTIVITY),
    ).astype(np.int8)
    ids = [
        np.flatnonzero(past),
        np.flatnonzero(cancel_past),
        np.flatnonzero(present),
        rows_s,
        rows_s,
    ]
    ts = [
        st.last_activity_ms[r][past],
        st.cancel_before_ms[r][cancel_past],
        st.last_last_ms[r][present],
        start_ms_s,
        last_ms_s,
    ]
    pages = [
        np.full(ids[0].size, _PAGE_ACTIVITY, dtype=np.int8),
        np.full(ids[1].size, _PAGE_CANCEL, dtype=np.int8),
        pres_page[present],
        np.full(rows_s.size, _PAGE_ACTIVITY, dtype=np.int8),
        last_page,
    ]
    pid = np.concatenate(ids)
    ts_all = np.concatenate(ts)
    keep = ts_all < cutoff_ms[pid] + window_days * DAY_MS  # the label reads nothing later
    pid, ts_all = pid[keep], ts_all[keep]
    page_all = np.concatenate(pages)[keep]
    order = np.argsort(pid * (1 << 30) + (ts_all - ts_all.min()) // 1000, kind="stable")
    pid, ts_all, page_all = pid[order], ts_all[order], page_all[order]
    reg_ms = st.registration_ms[r]
    width_id = len(str(max(m - 1, 1)))
    events = pl.DataFrame(
        {
            "user_id": pl.Series(pid).cast(pl.String).str.zfill(width_id),
            "ts": pl.Series(ts_all).cast(_TS),
            "page": _PAGES.gather(page_all),
            "registration": pl.Series(np.where(reg_ms[pid] >= 0, reg_ms[pid], 0)).cast(_TS),
        }
    ).with_columns(pl.when(pl.Series(reg_ms[pid] >= 0)).then(pl.col("registration")).alias("registration"))
    keys = pl.DataFrame(
        {
            "user_id": pl.Series(np.arange(m)).cast(pl.String).str.zfill(width_id),
            "cutoff": pl.Series(cutoff_ms).cast(_TS),
        }
    )
    return events, keys


def oracle_probabilities(
    truth: pl.DataFrame,
    keys: pl.DataFrame,
    labels_cfg: LabelsConfig | int,
    *,
    n_draws: int = 200,
    seed: int = 0,
    max_rows: int | None = None,
    progress: bool = False,
    n_threads: int = 1,
) -> OracleResult | np.ndarray:
    """P(label = 1 | latent state at the cutoff) per (``user_id``, ``cutoff``) row of ``keys``.

    Inputs: the ground-truth sidecar, the rows to score (cutoffs at UTC midnights inside the simulated
    days), the run's ``LabelsConfig``, the number of Monte-Carlo draws per row, a seed, and an optional
    budget ``max_rows`` (score a random sample of that many rows; the others get null ``p``) and the threads
    that simulate blocks of rows at once (each block has its own seeded stream: any count gives the same
    bytes). Output: an
    ``OracleResult`` whose table is ``keys`` (in order) plus ``p`` and ``se`` (null when the row is not
    eligible at its cutoff, or not sampled). Same truth, keys, config, draws and seed → same output.

    Passing an ``int`` as the third argument calls the old realised-hazard oracle
    (``truth.realised_hazard_probabilities(truth, keys, horizon_days)``) and returns its array, with a
    ``DeprecationWarning`` — kept until every caller passes a ``LabelsConfig``.
    """
    if isinstance(labels_cfg, int) and not isinstance(labels_cfg, bool):
        from churnflow.simulate.truth import realised_hazard_probabilities

        warnings.warn(
            "oracle_probabilities(truth, keys, horizon_days) is the old realised-hazard oracle; pass the "
            "run's LabelsConfig for the Monte-Carlo oracle that matches the label",
            DeprecationWarning,
            stacklevel=2,
        )
        return realised_hazard_probabilities(truth, keys, labels_cfg)

    from churnflow.labels import label_at_cutoffs, label_window_days

    t0 = time.perf_counter()
    if n_draws < 2:
        raise ValueError(f"n_draws must be >= 2, got {n_draws}")
    keys = _check_keys(keys)
    window = label_window_days(labels_cfg)
    preset, regime, world_seed = _world_of(truth)
    st = latent_states(truth, keys)
    m = keys.height
    rng = np.random.default_rng([seed, 7_919])
    chosen = np.arange(m)
    if max_rows is not None and max_rows < m:
        chosen = np.sort(rng.choice(m, size=max_rows, replace=False))
    # rows that cannot be eligible (no activity before T, cancelled before T) need no draws
    live = chosen[(st.last_activity_ms[chosen] >= 0) & (st.cancel_before_ms[chosen] < 0)]
    start_ms = int(truth["hazard_start"].cast(_TS).dt.epoch("ms")[0])
    song = _song_seconds(world_seed, regime.after)
    p = np.full(m, np.nan)
    se = np.full(m, np.nan)
    per_block = max(1, _BLOCK_PSEUDO_USERS // n_draws)
    blocks = [live[i : i + per_block] for i in range(0, live.size, per_block)]

    def run_block(b: int) -> None:
        sel = blocks[b]
        block_rng = np.random.default_rng([seed, b])  # one stream per block: the same draws on any thread
        events, pkeys = _future_events(block_rng, st, sel, n_draws, window, regime, preset, start_ms, song)
        data_end = datetime.fromtimestamp((int(st.cutoff_ms[sel].max()) + window * DAY_MS) / 1000, tz=UTC)
        lab = label_at_cutoffs(events, pkeys, labels_cfg, data_end=data_end)["label"]
        y = lab.cast(pl.Float64).to_numpy().reshape(sel.size, n_draws)
        eligible = ~np.isnan(y).any(axis=1)
        mean = np.where(eligible, np.nanmean(np.where(np.isnan(y), 0.0, y), axis=1), np.nan)
        sd = np.sqrt(mean * (1 - mean) * n_draws / (n_draws - 1))
        p[sel] = mean  # blocks own disjoint rows
        se[sel] = sd / np.sqrt(n_draws)

    with (
        ThreadPoolExecutor(max_workers=max(1, n_threads)) as pool,
        progress_bar(total=len(blocks), desc="oracle", unit="block", disable=not progress) as bar,
    ):
        for _ in pool.map(run_block, range(len(blocks))):
            bar.update(1)
    table = keys.with_columns(
        pl.Series("p", p).fill_nan(None),
        pl.Series("se", se).fill_nan(None),
    )
    scored = table.filter(pl.col("p").is_not_null())
    summary = {
        "n_draws": n_draws,
        "seed": seed,
        "rows": m,
        "rows_sampled": int(chosen.size),
        "rows_scored": scored.height,
        "mean_p": float(scored["p"].mean()) if scored.height else None,
        "mean_mc_se": float(scored["se"].mean()) if scored.height else None,
        "max_mc_se": float(scored["se"].max()) if scored.height else None,
        "label_window_days": window,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return OracleResult(table=table, summary=summary)


# ---------------------------------------------------------------------------------------------------------
# latent state as features


def latent_state_features(truth: pl.DataFrame, keys: pl.DataFrame) -> pl.DataFrame:
    """The latent state at each cutoff as model features: ``user_id``, ``cutoff`` and ``latent__*``.

    All known at T: ``engagement``, ``sat_trait``, ``sat_mean`` (the user's mean under the day's
    parameters), ``sat`` (satisfaction of the day that ended at T), ``hazard`` (the daily hazard at that
    satisfaction with T's day's covariates), ``paid`` (level at T), ``free_at_start``, ``tenure_days``,
    ``days_since_session_end`` (0 while a session is in progress), ``in_session``, ``gap_mean`` (mean of
    the gap after the last session), ``expected_gap_left`` (days to the next session expected under the
    conditioned gap law), ``decided`` (decided to leave before T) and ``decided_silent``.
    """
    from scipy.special import gammaincc

    keys = _check_keys(keys)
    preset, regime, _ = _world_of(truth)
    st = latent_states(truth, keys)
    c = st.c
    free = ~st.paid0
    mu = regime.value("sat_mu_sd", c) * st.z + regime.value("sat_free_shift", c) * free
    hz = daily_hazard(
        regime, st.sat_prev[:, None], c, st.e, free, st.reg_day, st.customer_from, preset.churn_boost
    )[:, 0]
    t_cut = c.astype(np.float64)
    since = np.where(st.has_session, np.maximum(t_cut - st.last_end, 0.0), np.nan)
    shape = np.asarray(
        regime.value("gap_shape", np.floor(np.nan_to_num(st.last_start)).astype(np.int64)), dtype=np.float64
    )
    shape = np.broadcast_to(shape, c.shape)
    gm = st.last_gap_mean
    scale = gm / shape
    x = np.nan_to_num(since) / np.where(np.isnan(scale), 1.0, scale)
    # E[G - a | G > a] for G ~ Gamma(k, theta): theta (k Q(k+1, x) / Q(k, x)) - a
    q0 = gammaincc(shape, x)
    q1 = gammaincc(shape + 1, x)
    left = np.where(q0 > 1e-300, scale * shape * q1 / np.maximum(q0, 1e-300) - np.nan_to_num(since), np.nan)
    return keys.with_columns(
        pl.Series("latent__engagement", st.e),
        pl.Series("latent__sat_trait", st.z),
        pl.Series("latent__sat_mean", mu),
        pl.Series("latent__sat", st.sat_prev),
        pl.Series("latent__hazard", hz),
        pl.Series("latent__paid", st.paid.astype(np.int8)),
        pl.Series("latent__free_at_start", free.astype(np.int8)),
        pl.Series("latent__tenure_days", t_cut - st.reg_day),
        pl.Series("latent__days_since_session_end", since).fill_nan(None),
        pl.Series("latent__in_session", (st.has_session & (st.last_end > t_cut)).astype(np.int8)),
        pl.Series("latent__gap_mean", gm).fill_nan(None),
        pl.Series("latent__expected_gap_left", left).fill_nan(None),
        pl.Series("latent__decided", st.decided.astype(np.int8)),
        pl.Series("latent__decided_silent", (st.decided & (st.decision_kind == KIND_SILENT)).astype(np.int8)),
    )
