"""Run a simulation: world → sessions → events streamed to disk chunk by chunk, plus the truth sidecar.

Determinism: every random stream is a ``numpy.random.Generator`` seeded from (seed, stream id), chunks
have a preset-fixed size, gzip members are cut at fixed sizes and written with mtime 0 and no file name,
in chunk order whatever the threads' timing, so the same (preset, scenario, change day, seed, gzip) gives
byte-identical files on any machine with the same library versions.
"""

from __future__ import annotations

import io
import time
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl

from churnflow.simulate.events import ActivityTimes, UserAttributes, expand_sessions, guest_events
from churnflow.simulate.presets import (
    DAY_MS,
    Preset,
    Regime,
    WorldParams,
    get_preset,
    get_regime,
    scenario_name,
)
from churnflow.simulate.truth import ORACLE_STATE_COLUMNS, TRUTH_DIR, TRUTH_FILE
from churnflow.simulate.vocab import Catalogue, build_catalogue, embedded_vocab, person_names
from churnflow.simulate.world import (
    KIND_NAMES,
    Sessions,
    Users,
    registration_ms,
    session_start_ms,
    simulate_sessions,
    simulate_users,
)
from churnflow.utils.io import atomic_path, write_parquet
from churnflow.utils.progress import progress as progress_bar

# random stream ids (the second seed word); chunk i uses _STREAM_CHUNK + i
_STREAM_WORLD, _STREAM_VOCAB, _STREAM_ATTRS, _STREAM_GUESTS, _STREAM_CHUNK = 0, 1, 2, 3, 1000
_STREAM_MIX = 4  # with seed 0: the location / user-agent mix shared by every world
#: gzip: level 1 (about 12x smaller than the JSON, several times faster to write than level 6), written as
#: independent members of at most ~64 MB of JSON each
_GZIP_LEVEL = 1
_GZIP_MEMBER_BYTES = 64 * 1024 * 1024
_WORKERS = 2


@dataclass(frozen=True)
class SimulationSummary:
    """What a simulation wrote and how large it is."""

    preset: str
    scenario: str
    seed: int
    change_day: int
    events_path: str
    truth_path: str
    n_events: int
    n_users: int
    n_sessions: int
    n_cancel: int
    n_silent: int
    seconds: float

    def __str__(self) -> str:
        return (
            f"simulated {self.n_events:,} events of {self.n_users:,} users ({self.n_sessions:,} sessions; "
            f"{self.n_cancel} cancelled, {self.n_silent} silent churners) "
            f"preset={self.preset} scenario={self.scenario} change_day={self.change_day} seed={self.seed} "
            f"in {self.seconds:.1f}s "
            f"→ {self.events_path}"
        )

    def to_dict(self) -> dict[str, object]:
        """Plain dict (for JSON)."""
        return asdict(self)


@dataclass
class World:
    """Everything about a simulated world except the events themselves."""

    preset: Preset
    scenario: str
    regime: Regime
    seed: int
    users: Users
    sessions: Sessions
    session_ids: np.ndarray
    guest_start_days: np.ndarray
    guest_session_ids: np.ndarray
    attrs: UserAttributes


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


def _user_attributes(rng: np.random.Generator, preset: Preset, users: Users) -> UserAttributes:
    """User ids, names, gender, location, user agent and registration; last row is the anonymous one."""
    n = users.n
    vocab = embedded_vocab()
    ids = rng.choice(np.arange(2, 3 * n + 10), size=n, replace=False)
    prefix = rng.choice(np.array([0, 100_000, 200_000, 300_000]), size=n, p=[0.8, 0.1, 0.05, 0.05])
    user_id = [str(int(i + pre)) for i, pre in zip(ids, prefix, strict=True)]
    if len(set(user_id)) != n:  # pragma: no cover - prefixes keep ids apart
        raise RuntimeError("duplicate simulated user ids")
    gender = np.where(rng.random(n) < 0.54, "M", "F")
    first, last = person_names(rng, gender)
    # the service's location and device mix is a property of the simulated service, the same in every world
    # (drawn per seed it made worlds of the same settings differ in 20+ features); the per-seed draws are
    # still taken so every other random stream is unchanged
    rng.dirichlet(np.full(len(vocab["locations"]), 0.6))
    rng.dirichlet(np.full(len(vocab["user_agents"]), 0.8))
    mix = _rng(0, _STREAM_MIX)
    loc_p = mix.dirichlet(np.full(len(vocab["locations"]), 0.6))
    ua_p = mix.dirichlet(np.full(len(vocab["user_agents"]), 0.8))
    location = [vocab["locations"][i] for i in rng.choice(len(vocab["locations"]), n, p=loc_p)]
    agent = [vocab["user_agents"][i] for i in rng.choice(len(vocab["user_agents"]), n, p=ua_p)]
    reg = registration_ms(preset, users.reg_days)
    return UserAttributes(
        user_id=pl.Series("userId", [*user_id, ""], dtype=pl.String),
        first_name=pl.Series("firstName", [*first, None], dtype=pl.String),
        last_name=pl.Series("lastName", [*last, None], dtype=pl.String),
        gender=pl.Series("gender", [*gender.tolist(), None], dtype=pl.String),
        location=pl.Series("location", [*location, None], dtype=pl.String),
        user_agent=pl.Series("userAgent", [*agent, None], dtype=pl.String),
        registration=pl.Series("registration", [*reg.tolist(), None], dtype=pl.Int64),
    )


def build_world(preset_name: str, seed: int, scenario: str = "baseline", change_day: int = 0) -> World:
    """Draw the latent world (users, hazard, churn, sessions, ids) for a preset, seed and scenario.

    ``change_day``: the scenario's changes apply from this day (days from the start); 0 = everywhere.
    """
    preset, regime = get_preset(preset_name), get_regime(scenario, change_day)
    rng = _rng(seed, _STREAM_WORLD)
    users = simulate_users(rng, preset, regime)
    sessions = simulate_sessions(rng, preset, regime, users)
    n_guest = int(rng.poisson(regime.at(-1).guest_sessions_per_user * preset.n_users))
    guest_start = np.sort(rng.uniform(0.0, preset.n_days, n_guest))
    # sessionId: one global counter in order of session start, like Eventsim
    starts = np.concatenate([sessions.start_days, guest_start])
    rank = np.empty(starts.size, dtype=np.int64)
    rank[np.argsort(starts, kind="stable")] = np.arange(1, starts.size + 1)
    attrs = _user_attributes(_rng(seed, _STREAM_ATTRS), preset, users)
    return World(
        preset=preset,
        scenario=scenario_name(scenario),
        regime=regime,
        seed=seed,
        users=users,
        sessions=sessions,
        session_ids=rank[: sessions.user.size],
        guest_start_days=guest_start,
        guest_session_ids=rank[sessions.user.size :],
        attrs=attrs,
    )


def catalogue_for(seed: int, params: WorldParams) -> Catalogue:
    """The song catalogue of a world simulated with ``seed``: the service's catalogue, the same in every
    world (drawn per seed, worlds of the same settings differed in song lengths and the content features
    built on them; the drift monitor flagged that). ``seed`` stays in the signature for the callers."""
    del seed  # the catalogue belongs to the service, not to a world
    return build_catalogue(_rng(0, _STREAM_VOCAB), params.n_artists, params.n_songs)


def world_catalogue(world: World) -> Catalogue:
    """The world's song catalogue."""
    return catalogue_for(world.seed, world.regime.after)


def iter_event_chunks(world: World, seed: int | None = None) -> Iterator[pl.DataFrame]:
    """Yield the events chunk by chunk (``preset.chunk_users`` users each, then the guests)."""
    for frame, _ in _iter_chunks(world):
        yield frame


def _iter_chunks(world: World) -> Iterator[tuple[pl.DataFrame, tuple[int, int, ActivityTimes] | None]]:
    """Event frames chunk by chunk with (first session, end session, activity times); guests last (None)."""
    seed = world.seed
    catalogue = world_catalogue(world)
    s = world.sessions
    bounds = np.searchsorted(
        s.user, np.arange(0, world.users.n + world.preset.chunk_users, world.preset.chunk_users)
    )
    for i in range(bounds.size - 1):
        lo, hi = int(bounds[i]), int(bounds[i + 1])
        if lo == hi:
            continue
        part = Sessions(**{k: v[lo:hi] for k, v in vars(s).items()})
        frame, times = expand_sessions(
            _rng(seed, _STREAM_CHUNK + i), world.preset, world.regime, part, world.session_ids[lo:hi],
            world.attrs, catalogue,
        )  # fmt: skip
        yield frame, (lo, hi, times)
    if world.guest_start_days.size:
        yield (
            guest_events(
                _rng(seed, _STREAM_GUESTS), world.preset, world.guest_start_days, world.guest_session_ids
            ),
            None,
        )


def n_chunks(world: World) -> int:
    """How many frames ``iter_event_chunks`` yields (for progress bars)."""
    per = world.preset.chunk_users
    return -(-world.users.n // per) + int(world.guest_start_days.size > 0)


def _user_stats(frame: pl.DataFrame) -> pl.DataFrame:
    """Per user of a chunk: first/last ts, event count, Cancellation Confirmation ts."""
    return (
        frame.filter(pl.col("userId") != "")
        .group_by("userId")
        .agg(
            pl.col("ts").min().alias("first_event_ts"),
            pl.col("ts").max().alias("last_event_ts"),
            pl.len().alias("n_events"),
            pl.col("ts").filter(pl.col("page") == "Cancellation Confirmation").max().alias("confirm_ts"),
        )
    )


def _lists_by_user(n: int, user: np.ndarray, columns: dict[str, pl.Series]) -> pl.DataFrame:
    """One row per user index 0..n-1 with each column gathered into a list (rows sorted by ``user``)."""
    flat = pl.DataFrame({"_u": user.astype(np.int64), **columns})
    grouped = flat.group_by("_u", maintain_order=True).agg(pl.all())
    return (
        pl.DataFrame({"_u": np.arange(n, dtype=np.int64)})
        .join(grouped, on="_u", how="left", maintain_order="left")
        .drop("_u")
    )


def truth_frame(
    world: World, stats: pl.DataFrame, session_last_ms: np.ndarray, activity: ActivityTimes
) -> pl.DataFrame:
    """The ground-truth sidecar (see ``churnflow.simulate.truth``) from the world, per-user event stats,
    each session's last logged-in event and each (user, day)'s last logged-in event."""
    u, preset, s = world.users, world.preset, world.sessions
    kinds = [KIND_NAMES[k] for k in u.churn_kind]
    churn_ms = np.where(
        np.isnan(u.churn_time), 0, preset.start_ms + np.round(np.nan_to_num(u.churn_time) * DAY_MS)
    ).astype(np.int64)
    utc = pl.Datetime("ms", "UTC")
    base = pl.DataFrame(
        {
            "user_id": world.attrs.user_id.head(u.n),
            "registration": world.attrs.registration.head(u.n),
            "paid_at_start": u.paid0,
            "paid_at_window_start": u.level0,
            "engagement": u.engagement,
            "churn_kind": pl.Series(kinds, dtype=pl.String),
            "decision_ms": pl.Series(churn_ms).set(pl.Series(np.isnan(u.churn_time)), None),
            "hazard": pl.Series(list(u.hazard), dtype=pl.List(pl.Float64)),
            "satisfaction": pl.Series(list(u.sat), dtype=pl.List(pl.Float64)),
            "sat_trait": u.sat_trait,
            "reg_day": u.reg_days,
            "first_session_day": u.first_session,
            "decision_day": u.decision_time,
            "decision_kind": pl.Series([KIND_NAMES[k] for k in u.decision_kind], dtype=pl.String),
        }
    )
    sessions = _lists_by_user(
        u.n,
        s.user,
        {
            "session_start_day": pl.Series(s.start_days),
            "session_end_day": pl.Series(s.end_days),
            "session_last_ms": pl.Series(session_last_ms, dtype=pl.Int64),
            "session_kind": pl.Series(s.kind, dtype=pl.Int8),
            "session_paid_after": pl.Series(s.paid_after, dtype=pl.Boolean),
            "session_gap_mean": pl.Series(s.gap_mean),
        },
    )
    days = _lists_by_user(
        u.n,
        activity.day_user,
        {
            "active_day": pl.Series(activity.day, dtype=pl.Int32),
            "active_day_last_ms": pl.Series(activity.day_last_ms, dtype=pl.Int64),
        },
    )
    out = pl.concat([base, sessions, days], how="horizontal").join(
        stats.rename({"userId": "user_id"}), on="user_id", how="left", maintain_order="left"
    )
    return out.select(
        "user_id",
        pl.col("registration").cast(utc),
        "paid_at_start",
        "engagement",
        "churn_kind",
        pl.when(pl.col("churn_kind") == "cancel")
        .then(pl.col("confirm_ts"))
        .otherwise(pl.col("decision_ms"))
        .cast(utc)
        .alias("churn_ts"),
        pl.col("first_event_ts").cast(utc),
        pl.col("last_event_ts").cast(utc),
        pl.col("n_events").fill_null(0).cast(pl.Int64),
        pl.lit(preset.start_ms).cast(utc).alias("hazard_start"),
        "hazard",
        "satisfaction",
        *ORACLE_STATE_COLUMNS,
        pl.lit(preset.name).alias("preset"),
        pl.lit(world.scenario).alias("scenario"),
        pl.lit(world.regime.change_day, dtype=pl.Int32).alias("change_day"),
        pl.lit(world.seed, dtype=pl.Int64).alias("seed"),
    )


def simulate_to_dir(
    preset: str,
    seed: int,
    out_dir: Path,
    scenario: str = "baseline",
    gzip: bool = False,
    progress: bool = True,
    change_day: int = 0,
) -> SimulationSummary:
    """Simulate and write ``out_dir/events.json`` (``.json.gz`` with gzip) and the truth sidecar.

    Inputs: preset name, seed, output folder, scenario name (``default`` = ``baseline``), gzip flag,
    progress-bar flag, the day the scenario's changes start (0: the whole world).
    Output: a ``SimulationSummary``. Invariant: same (preset, scenario, change_day, seed, gzip) →
    byte-identical files. Other files in ``out_dir`` are left alone, except the other variant of the events
    file (``events.json`` vs ``events.json.gz``), which is removed so a loader never reads two copies.
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    world = build_world(preset, seed, scenario, change_day)
    out_dir.mkdir(parents=True, exist_ok=True)
    name, other = ("events.json.gz", "events.json") if gzip else ("events.json", "events.json.gz")
    events_path = out_dir / name
    stats: list[pl.DataFrame] = []
    session_last = np.full(world.sessions.user.size, -1, dtype=np.int64)
    activity: list[ActivityTimes] = []
    n_events = 0
    bar = progress_bar(total=n_chunks(world), desc=f"simulate {preset}", unit="chunk", disable=not progress)
    # serialising (and compressing) chunk i runs in worker threads while chunk i + 1 is simulated; results
    # are written in chunk order, so the bytes do not depend on timing
    pending: deque[Future[tuple[list[bytes], pl.DataFrame | None]]] = deque()
    with (
        atomic_path(events_path) as tmp,
        tmp.open("wb") as raw,
        ThreadPoolExecutor(max_workers=_WORKERS) as pool,
    ):
        try:
            for frame, where in _iter_chunks(world):
                if where is not None:
                    lo, hi, times = where
                    session_last[lo:hi] = times.session_last_ms
                    activity.append(times)
                pending.append(pool.submit(_serialise, frame, gzip, where is not None))
                n_events += frame.height
                while len(pending) >= _WORKERS:
                    _drain(pending.popleft(), raw, stats)
                bar.update(1)
                bar.set_postfix(events=f"{n_events:,}")
            while pending:
                _drain(pending.popleft(), raw, stats)
        finally:
            for fut in pending:
                fut.cancel()
            bar.close()
    (out_dir / other).unlink(missing_ok=True)
    act = ActivityTimes(
        session_last_ms=session_last,
        day_user=np.concatenate([a.day_user for a in activity]),
        day=np.concatenate([a.day for a in activity]),
        day_last_ms=np.concatenate([a.day_last_ms for a in activity]),
    )
    truth = truth_frame(world, pl.concat(stats).sort("userId"), session_last, act)
    t_path = out_dir / TRUTH_DIR / TRUTH_FILE
    write_parquet(truth, t_path)
    kinds = world.users.churn_kind
    return SimulationSummary(
        preset=preset,
        scenario=world.scenario,
        seed=seed,
        change_day=change_day,
        events_path=str(events_path),
        truth_path=str(t_path),
        n_events=n_events,
        n_users=world.users.n,
        n_sessions=int(world.sessions.user.size + world.guest_start_days.size),
        n_cancel=int((kinds == 1).sum()),
        n_silent=int((kinds == 2).sum()),
        seconds=round(time.perf_counter() - t0, 3),
    )


def _gzip_member(data: memoryview) -> bytes:
    """One gzip member (mtime 0, no file name) holding ``data``; members concatenate into one .gz file."""
    comp = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 31)
    return comp.compress(data) + comp.flush()


def _serialise(frame: pl.DataFrame, gzip: bool, with_stats: bool) -> tuple[list[bytes], pl.DataFrame | None]:
    """JSON lines of a chunk (as gzip members of about ``_GZIP_MEMBER_BYTES`` when asked) and its stats."""
    buf = io.BytesIO()
    frame.write_ndjson(buf)
    data = buf.getbuffer()
    if not gzip:
        parts = [bytes(data)]
    else:
        parts = []
        lo = 0
        while lo < len(data):
            hi = min(lo + _GZIP_MEMBER_BYTES, len(data))
            if hi < len(data):
                hi = bytes(data[hi : hi + 65_536]).index(b"\n") + hi + 1  # members end at a line end
            parts.append(_gzip_member(data[lo:hi]))
            lo = hi
    return parts, (_user_stats(frame) if with_stats else None)


def _drain(
    fut: Future[tuple[list[bytes], pl.DataFrame | None]], raw: BinaryIO, stats: list[pl.DataFrame]
) -> None:
    parts, chunk_stats = fut.result()
    for part in parts:
        raw.write(part)
    if chunk_stats is not None:
        stats.append(chunk_stats)


__all__ = [
    "SimulationSummary",
    "World",
    "build_world",
    "iter_event_chunks",
    "session_start_ms",
    "simulate_to_dir",
]
