"""Run a simulation: world → sessions → events streamed to disk chunk by chunk, plus the truth sidecar.

Determinism: every random stream is a ``numpy.random.Generator`` seeded from (seed, stream id), chunks
have a preset-fixed size, gzip is written with mtime 0 and no file name, so the same (preset, scenario,
seed) gives byte-identical files on any machine with the same library versions.
"""

from __future__ import annotations

import gzip as gzip_mod
import io
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl
from tqdm.auto import tqdm

from churnflow.simulate.events import UserAttributes, expand_sessions, guest_events
from churnflow.simulate.presets import DAY_MS, Preset, WorldParams, get_preset, get_scenario
from churnflow.simulate.truth import TRUTH_DIR, TRUTH_FILE
from churnflow.simulate.vocab import build_catalogue, embedded_vocab, person_names
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

# random stream ids (the second seed word); chunk i uses _STREAM_CHUNK + i
_STREAM_WORLD, _STREAM_VOCAB, _STREAM_ATTRS, _STREAM_GUESTS, _STREAM_CHUNK = 0, 1, 2, 3, 1000
_GZIP_LEVEL = 6


@dataclass(frozen=True)
class SimulationSummary:
    """What a simulation wrote and how large it is."""

    preset: str
    scenario: str
    seed: int
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
            f"preset={self.preset} scenario={self.scenario} seed={self.seed} in {self.seconds:.1f}s "
            f"→ {self.events_path}"
        )

    def to_dict(self) -> dict[str, object]:
        """Plain dict (for JSON)."""
        return asdict(self)


@dataclass
class World:
    """Everything about a simulated world except the events themselves."""

    preset: Preset
    params: WorldParams
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
    loc_p = rng.dirichlet(np.full(len(vocab["locations"]), 0.6))
    ua_p = rng.dirichlet(np.full(len(vocab["user_agents"]), 0.8))
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


def build_world(preset_name: str, seed: int, scenario: str = "default") -> World:
    """Draw the latent world (users, hazard, churn, sessions, ids) for a preset, seed and scenario."""
    preset, params = get_preset(preset_name), get_scenario(scenario)
    rng = _rng(seed, _STREAM_WORLD)
    users = simulate_users(rng, preset, params)
    sessions = simulate_sessions(rng, preset, params, users)
    n_guest = int(rng.poisson(params.guest_sessions_per_user * preset.n_users))
    guest_start = np.sort(rng.uniform(0.0, preset.n_days, n_guest))
    # sessionId: one global counter in order of session start, like Eventsim
    starts = np.concatenate([sessions.start_days, guest_start])
    rank = np.empty(starts.size, dtype=np.int64)
    rank[np.argsort(starts, kind="stable")] = np.arange(1, starts.size + 1)
    attrs = _user_attributes(_rng(seed, _STREAM_ATTRS), preset, users)
    return World(
        preset=preset,
        params=params,
        users=users,
        sessions=sessions,
        session_ids=rank[: sessions.user.size],
        guest_start_days=guest_start,
        guest_session_ids=rank[sessions.user.size :],
        attrs=attrs,
    )


def iter_event_chunks(world: World, seed: int) -> Iterator[pl.DataFrame]:
    """Yield the events chunk by chunk (``preset.chunk_users`` users each, then the guests)."""
    catalogue = build_catalogue(_rng(seed, _STREAM_VOCAB), world.params.n_artists, world.params.n_songs)
    s = world.sessions
    bounds = np.searchsorted(
        s.user, np.arange(0, world.users.n + world.preset.chunk_users, world.preset.chunk_users)
    )
    for i in range(bounds.size - 1):
        lo, hi = int(bounds[i]), int(bounds[i + 1])
        if lo == hi:
            continue
        part = Sessions(**{k: v[lo:hi] for k, v in vars(s).items()})
        yield expand_sessions(
            _rng(seed, _STREAM_CHUNK + i), world.preset, world.params, part, world.session_ids[lo:hi],
            world.attrs, catalogue,
        )  # fmt: skip
    if world.guest_start_days.size:
        yield guest_events(
            _rng(seed, _STREAM_GUESTS), world.preset, world.guest_start_days, world.guest_session_ids
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


def truth_frame(world: World, stats: pl.DataFrame) -> pl.DataFrame:
    """The ground-truth sidecar (see ``churnflow.simulate.truth``) from the world and per-user stats."""
    u, preset = world.users, world.preset
    kinds = [KIND_NAMES[k] for k in u.churn_kind]
    decision_ms = np.where(
        np.isnan(u.churn_time), 0, preset.start_ms + np.round(np.nan_to_num(u.churn_time) * DAY_MS)
    ).astype(np.int64)
    base = pl.DataFrame(
        {
            "user_id": world.attrs.user_id.head(u.n),
            "registration": world.attrs.registration.head(u.n),
            "paid_at_start": u.paid0,
            "engagement": u.engagement,
            "churn_kind": pl.Series(kinds, dtype=pl.String),
            "decision_ms": pl.Series(decision_ms).set(pl.Series(np.isnan(u.churn_time)), None),
            "hazard": pl.Series([row for row in u.hazard], dtype=pl.List(pl.Float64)),
            "satisfaction": pl.Series([row for row in u.sat], dtype=pl.List(pl.Float64)),
        }
    )
    utc = pl.Datetime("ms", "UTC")
    out = base.join(stats.rename({"userId": "user_id"}), on="user_id", how="left", maintain_order="left")
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
    )


def simulate_to_dir(
    preset: str,
    seed: int,
    out_dir: Path,
    scenario: str = "default",
    gzip: bool = False,
    progress: bool = True,
) -> SimulationSummary:
    """Simulate and write ``out_dir/events.json`` (``.json.gz`` with gzip) and the truth sidecar.

    Inputs: preset name, seed, output folder, scenario name, gzip flag, progress-bar flag.
    Output: a ``SimulationSummary``. Invariant: same (preset, scenario, seed, gzip) → byte-identical files.
    Other files in ``out_dir`` are left alone, except the other variant of the events file (``events.json``
    vs ``events.json.gz``), which is removed so a loader never reads two copies.
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    world = build_world(preset, seed, scenario)
    name, other = ("events.json.gz", "events.json") if gzip else ("events.json", "events.json.gz")
    events_path = out_dir / name
    stats: list[pl.DataFrame] = []
    n_events = 0
    bar = tqdm(total=n_chunks(world), desc=f"simulate {preset}", unit="chunk", disable=not progress)
    with atomic_path(events_path) as tmp, tmp.open("wb") as raw:
        sink = (
            gzip_mod.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=_GZIP_LEVEL)
            if gzip
            else raw
        )
        try:
            for frame in iter_event_chunks(world, seed):
                buf = io.BytesIO()
                frame.write_ndjson(buf)
                sink.write(buf.getvalue())
                stats.append(_user_stats(frame))
                n_events += frame.height
                bar.update(1)
                bar.set_postfix(events=f"{n_events:,}")
        finally:
            if gzip:
                sink.close()
            bar.close()
    (out_dir / other).unlink(missing_ok=True)
    truth = truth_frame(world, pl.concat(stats).sort("userId"))
    t_path = out_dir / TRUTH_DIR / TRUTH_FILE
    write_parquet(truth, t_path)
    kinds = world.users.churn_kind
    return SimulationSummary(
        preset=preset,
        scenario=scenario,
        seed=seed,
        events_path=str(events_path),
        truth_path=str(t_path),
        n_events=n_events,
        n_users=world.users.n,
        n_sessions=int(world.sessions.user.size + world.guest_start_days.size),
        n_cancel=int((kinds == 1).sum()),
        n_silent=int((kinds == 2).sum()),
        seconds=round(time.perf_counter() - t0, 3),
    )


__all__ = [
    "SimulationSummary",
    "World",
    "build_world",
    "iter_event_chunks",
    "session_start_ms",
    "simulate_to_dir",
]
