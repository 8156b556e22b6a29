"""Feature engine speed: churnflow (all registry features) vs a plain pandas reference (a subset), same run.

Prints the figures and writes ``benchmarks/results/<name>.json``. Goals (issue 5) on the ``full`` preset:
offline ≥ 3× faster than the pandas reference and all cutoffs in ≤ 60 s; online p50 ≤ 3 ms and
p99 ≤ 6 ms for one user with 1,000 events (all features, in-process); peak memory reported.

Cutoffs: the labels schedule (``cfg.labels``: first event day + ``first_cutoff_days``, then every
``cutoff_every_days`` up to the last event) × every user whose first event is before the cutoff.
Each engine runs in its own subprocess so its peak RSS is its own; each part runs ``--repeats`` times
(fresh processes) and the fastest run counts, since the machine is shared (all times are listed).
The pandas reference (``pandas_reference.py``) computes a documented subset; the benchmark checks that
both agree on it. Each part is timed in wall time (the goals) and in this process's CPU time, which
other jobs on a shared machine disturb less; the 1-minute load average is recorded at the start and the
end. :func:`markdown_summary` renders a result as the Markdown docs/features.md quotes.

Run (heavy, so under the shared lock):
    flock /tmp/churnflow-heavy.lock .venv/bin/python benchmarks/bench_features.py run \\
        --events benchmarks/data/full_events.parquet --name features_full
Without the full events table, ``--synthetic-rows 26000000`` first writes a Sparkify-shaped synthetic
events Parquet (22,278 users, Sparkify page mix) to ``--events``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import psutil
import typer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from pandas_reference import pandas_features, subset_names  # noqa: E402

from churnflow.config import load_config  # noqa: E402
from churnflow.data.schema import PAGES  # noqa: E402
from churnflow.features import compute_features, compute_features_online, feature_names  # noqa: E402
from churnflow.utils.io import write_json, write_parquet  # noqa: E402

app = typer.Typer(add_completion=False)
DAY_MS = 86_400_000
GOALS = {
    "offline_speedup_min": 3.0,
    "offline_seconds_max": 60.0,
    "online_p50_ms_max": 3.0,
    "online_p99_ms_max": 6.0,
}


class PeakRss:
    """Sample this process's RSS every 50 ms in a thread; ``peak_mb`` after the block."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        proc = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, proc.memory_info().rss)
            time.sleep(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return round(self.peak / 2**20, 1)


def synthetic_events(n_rows: int, n_users: int, days: int, seed: int) -> pl.DataFrame:
    """Sparkify-shaped events (EVENT_COLUMNS subset the engine reads + registration), vectorised numpy."""
    rng = np.random.default_rng(seed)
    weight = rng.lognormal(0.0, 1.0, n_users)
    users = rng.choice(n_users, size=n_rows, p=weight / weight.sum())
    n_sessions_user = np.maximum(1, (np.bincount(users, minlength=n_users) // 80)).astype(np.int64)
    offset = np.concatenate([[0], np.cumsum(n_sessions_user)[:-1]])
    sess_local = (rng.random(n_rows) * n_sessions_user[users]).astype(np.int64)
    session = offset[users] + sess_local
    t0 = int(datetime(2018, 10, 1, tzinfo=UTC).timestamp() * 1000)
    start = t0 + rng.integers(0, days * DAY_MS, size=int(session.max()) + 1)
    ts = start[session] + rng.integers(0, 4 * 3_600_000, size=n_rows)
    names = list(PAGES)
    mix = np.array([82.0 if p == "NextSong" else 1.0 for p in names])
    mix[names.index("Thumbs Up")] = 4.5
    mix[names.index("Home")] = 3.6
    mix[names.index("Add to Playlist")] = 2.3
    page = rng.choice(len(names), size=n_rows, p=mix / mix.sum())
    is_song = page == names.index("NextSong")
    artist = (rng.zipf(1.3, n_rows) % 30_000).astype(np.int64)
    song = artist * 8 + rng.integers(0, 8, n_rows)
    uas = [
        "Mozilla/5.0 (Windows NT 6.1; WOW64) Chrome/36.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh) Safari/537.77",
    ]
    locs = ["Boston-Cambridge-Newton, MA-NH", "Houston, TX", "Chicago, IL-IN", "Los Angeles, CA"]
    frame = pl.DataFrame(
        {
            "user_id": pl.Series((users + 1).astype(np.int64)).cast(pl.String),
            "ts": pl.Series(ts).cast(pl.Datetime("ms", "UTC")),
            "session_id": session,
            "page": pl.Series(np.array(names)[page]).cast(pl.Categorical),
            "level": pl.Series(np.where(rng.random(n_users) < 0.3, "paid", "free")[users]).cast(
                pl.Enum(["free", "paid"])
            ),
            "status": pl.Series([PAGES[p][1] for p in names], dtype=pl.Int16).gather(page),
            "registration": pl.Series(t0 - rng.integers(1, 400, n_users)[users] * DAY_MS).cast(
                pl.Datetime("ms", "UTC")
            ),
            "gender": pl.Series(np.where(users % 2 == 0, "F", "M")),
            "location": pl.Series(locs).gather(users % len(locs)),
            "user_agent": pl.Series(uas).gather(users % len(uas)),
            "artist": pl.Series(artist).cast(pl.String).str.pad_start(6, "A"),
            "song": pl.Series(song).cast(pl.String),
            "length": rng.uniform(60, 500, n_rows),
        }
    ).with_columns(
        pl.when(pl.Series(is_song)).then(pl.col(c)).otherwise(None).alias(c)
        for c in ("artist", "song", "length")
    )
    return frame.sort("user_id", "ts")


def cutoffs_for(events_path: Path) -> pl.DataFrame:
    """The labels schedule × users active before each cutoff (see the module docstring)."""
    cfg = load_config(ROOT / "params.yaml").labels
    firsts = (
        pl.scan_parquet(events_path)
        .group_by(pl.col("user_id").cast(pl.String))
        .agg(first=pl.col("ts").min(), last=pl.col("ts").max())
        .collect()
    )
    start, end = firsts["first"].min(), firsts["last"].max()
    assert isinstance(start, datetime) and isinstance(end, datetime)
    t = datetime(start.year, start.month, start.day, tzinfo=UTC) + timedelta(days=cfg.first_cutoff_days)
    cuts: list[datetime] = []
    while t <= end:
        cuts.append(t)
        t += timedelta(days=cfg.cutoff_every_days)
    grid = firsts.join(
        pl.DataFrame({"cutoff": cuts}, schema={"cutoff": pl.Datetime("ms", "UTC")}), how="cross"
    )
    return (
        grid.filter(pl.col("first") < pl.col("cutoff")).select("user_id", "cutoff").sort("user_id", "cutoff")
    )


def _part_polars(events: Path, cutoffs: Path, out: Path) -> dict[str, Any]:
    cfg = load_config(ROOT / "params.yaml").features
    cut = pl.read_parquet(cutoffs)
    with PeakRss() as rss:
        t, c = time.perf_counter(), time.process_time()
        table = compute_features(pl.scan_parquet(events), cut, cfg)
        seconds, cpu = time.perf_counter() - t, time.process_time() - c
    table.write_parquet(out)
    return {
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),
        "peak_rss_mb": rss.peak_mb,
        "rows": table.height,
        "features": len(feature_names(cfg)),
    }


def _part_pandas(events: Path, cutoffs: Path, out: Path) -> dict[str, Any]:
    cfg = load_config(ROOT / "params.yaml").features
    with PeakRss() as rss:
        t = time.perf_counter()
        ev = (
            pl.scan_parquet(events)
            .select(
                pl.col("user_id").cast(pl.Categorical),
                pl.col("ts").dt.epoch("ms").alias("ts_ms"),
                "session_id",
                pl.col("page").cast(pl.Categorical),
                "length",
            )
            .collect()
            .to_pandas()
        )
        cut = (
            pl.read_parquet(cutoffs)
            .with_columns(cutoff_ms=pl.col("cutoff").dt.epoch("ms"))
            .drop("cutoff")
            .to_pandas()
        )
        read_s = time.perf_counter() - t
        t, c = time.perf_counter(), time.process_time()
        table = pandas_features(ev, cut, list(cfg.windows_days))
        seconds, cpu = time.perf_counter() - t, time.process_time() - c
    pl.from_pandas(table).write_parquet(out)
    return {
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),
        "read_seconds": round(read_s, 3),
        "peak_rss_mb": rss.peak_mb,
        "rows": len(table),
        "features": len(subset_names(list(cfg.windows_days))),
    }


def _part_online(events: Path, n_events: int, runs: int) -> dict[str, Any]:
    cfg = load_config(ROOT / "params.yaml").features
    counts = (
        pl.scan_parquet(events)
        .group_by("user_id")
        .len()
        .filter(pl.col("len") >= n_events)
        .sort("len", "user_id")
        .collect()
    )
    if counts.height == 0:
        raise typer.BadParameter(f"no user with {n_events} events")
    user = counts["user_id"][0]
    one = pl.scan_parquet(events).filter(pl.col("user_id") == user).sort("ts").head(n_events).collect()
    cutoff = one["ts"].max() + timedelta(milliseconds=1)
    for _ in range(20):
        compute_features_online(one, cutoff, cfg)
    times, cpu_times = [], []
    with PeakRss() as rss:
        for _ in range(runs):
            c, t = time.process_time(), time.perf_counter()
            compute_features_online(one, cutoff, cfg)
            times.append(time.perf_counter() - t)
            cpu_times.append(time.process_time() - c)
    ms, cpu_ms = np.array(times) * 1000, np.array(cpu_times) * 1000
    return {
        "events": one.height,
        "runs": runs,
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "cpu_p50_ms": round(float(np.percentile(cpu_ms, 50)), 3),
        "peak_rss_mb": rss.peak_mb,
        "features": len(feature_names(cfg)),
    }


def _runs(values: list[float], unit: str) -> str:
    return ", ".join(f"{v:.2f}" if unit == "ms" else f"{v:.1f}" for v in values)


def _cpu(part: dict[str, Any]) -> str:
    return f"CPU {part['cpu_seconds']:.1f} s; " if "cpu_seconds" in part else ""


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def markdown_summary(result: dict[str, Any]) -> str:
    """The figures of one result JSON as Markdown (docs/features.md quotes this text verbatim)."""
    ours, ref, online, met = (
        result["churnflow"],
        result["pandas_reference"],
        result["online"],
        result["goals_met"],
    )
    goals, machine = result["goals"], result["machine"]
    start = result.get("load_average_1m_at_start")
    load = f"{start} at the start, " if start is not None else ""
    cpu = f"CPU time p50 {online['cpu_p50_ms']:.2f} ms; " if "cpu_p50_ms" in online else ""
    online_time = (
        f"p50 {online['p50_ms']:.2f} ms, p99 {online['p99_ms']:.2f} ms ({cpu}{online['runs']} calls; "
        f"p50 of the runs: {_runs(online['all_p50_ms'], 'ms')})"
    )
    return "\n".join(
        [
            "| | time | peak RSS |",
            "|---|---|---|",
            f"| churnflow, {ours['features']} features, all cutoffs | {ours['seconds']:.1f} s "
            f"({_cpu(ours)}runs: {_runs(ours['all_seconds'], 's')}) | {ours['peak_rss_mb'] / 1024:.1f} GB |",
            f"| pandas reference, {ref['features']} features | {ref['seconds']:.1f} s "
            f"(+{ref['read_seconds']:.1f} s read; {_cpu(ref)}runs: {_runs(ref['all_seconds'], 's')}) "
            f"| {ref['peak_rss_mb'] / 1024:.1f} GB |",
            f"| online, one user, {online['events']:,} events, {online['features']} features "
            f"| {online_time} | {online['peak_rss_mb'] / 1024:.1f} GB |",
            "",
            f"Offline speed-up vs the pandas reference: {result['offline_speedup_vs_pandas']:.1f}x "
            f"({result['offline_speedup_vs_pandas_incl_read']:.1f}x counting its read); "
            f"the {ref['features']} shared features agree: {_yes(result['subset_agrees'])} "
            f"(max |diff| {result['subset_max_abs_diff']:.1e}).",
            f"Data: `{result['events_path']}`, {result['events']:,} events, "
            f"{result['cutoff_rows']:,} cutoff rows; measured {result['when']} on {machine['cpus']} cores "
            f"(1-minute load average {load}{result['load_average_1m_at_end']} at the end), "
            f"Polars {machine['polars']}, Python {machine['python']}; "
            f"fastest of {result['repeats']} fresh-process runs per part.",
            f"Goals met: offline <= {goals['offline_seconds_max']:.0f} s {_yes(met['offline_seconds'])}, "
            f"speed-up >= {goals['offline_speedup_min']:.0f}x {_yes(met['offline_speedup'])}, "
            f"online p50 <= {goals['online_p50_ms_max']:.0f} ms {_yes(met['online_p50'])}, "
            f"p99 <= {goals['online_p99_ms_max']:.0f} ms {_yes(met['online_p99'])}.",
        ]
    )


@app.command()
def part(
    name: str, events: Path, cutoffs: Path, out: Path, online_events: int = 1000, online_runs: int = 500
) -> None:
    """Internal: run one measured part in this (fresh) process and print its JSON."""
    if name == "polars":
        result = _part_polars(events, cutoffs, out)
    elif name == "pandas":
        result = _part_pandas(events, cutoffs, out)
    elif name == "online":
        result = _part_online(events, online_events, online_runs)
    else:
        raise typer.BadParameter(f"unknown part {name!r}")
    print("RESULT " + json.dumps(result))


def _run_part(
    name: str, events: Path, cutoffs: Path, out: Path, extra: list[str], repeats: int = 1
) -> dict[str, Any]:
    """Run a part ``repeats`` times, each in a fresh process; keep the fastest run, list every time."""
    runs: list[dict[str, Any]] = []
    for _ in range(repeats):
        cmd = [sys.executable, __file__, "part", name, str(events), str(cutoffs), str(out), *extra]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"part {name} failed:\n{proc.stderr[-3000:]}")
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
        runs.append(json.loads(line[len("RESULT ") :]))
    key = "p50_ms" if name == "online" else "seconds"
    best = min(runs, key=lambda r: r[key])
    return {**best, "all_" + key: [r[key] for r in runs]}


@app.command()
def run(
    events: Path = typer.Option(ROOT / "benchmarks/data/full_events.parquet", help="events table (Parquet)"),
    name: str = typer.Option("features_full", help="result name: benchmarks/results/<name>.json"),
    synthetic_rows: int = typer.Option(0, help="first write a synthetic events table of this many rows"),
    synthetic_users: int = typer.Option(22_278),
    online_events: int = typer.Option(1000),
    online_runs: int = typer.Option(500),
    repeats: int = typer.Option(2, help="fresh-process runs per part; the fastest counts (shared machine)"),
) -> None:
    """Measure offline (churnflow vs pandas reference), online latency and peak memory; write the JSON."""
    source = "existing"
    if synthetic_rows:
        t = time.perf_counter()
        write_parquet(synthetic_events(synthetic_rows, synthetic_users, 63, seed=5), events)
        took = time.perf_counter() - t
        source = f"synthetic ({synthetic_rows:,} rows, {synthetic_users:,} users), built in {took:.0f} s"
    if not events.exists():
        raise typer.BadParameter(f"{events} does not exist (use --synthetic-rows)")
    load_at_start = round(os.getloadavg()[0], 2)
    n_events = pl.scan_parquet(events).select(pl.len()).collect().item()
    with tempfile.TemporaryDirectory() as tmp:
        cut_path = Path(tmp) / "cutoffs.parquet"
        cutoffs_for(events).write_parquet(cut_path)
        n_cut = pl.read_parquet(cut_path).height
        print(f"events: {n_events:,} rows ({events}); cutoff rows: {n_cut:,}")
        ours = _run_part("polars", events, cut_path, Path(tmp) / "ours.parquet", [], repeats)
        print(
            f"churnflow polars, {ours['features']} features: {ours['seconds']:.1f} s, "
            f"peak RSS {ours['peak_rss_mb']:.0f} MB"
        )
        ref = _run_part("pandas", events, cut_path, Path(tmp) / "ref.parquet", [], repeats)
        print(
            f"pandas reference, {ref['features']} features: {ref['seconds']:.1f} s "
            f"(+{ref['read_seconds']:.1f} s read), "
            f"peak RSS {ref['peak_rss_mb']:.0f} MB"
        )
        a = pl.read_parquet(Path(tmp) / "ours.parquet")
        b = pl.read_parquet(Path(tmp) / "ref.parquet")
        cols = [c for c in b.columns if c not in ("user_id", "cutoff_ms")]
        diff = (a.select(cols).to_numpy() - b.select(cols).to_numpy()).astype(float)
        both_null = np.isnan(a.select(cols).to_numpy().astype(float)) & np.isnan(
            b.select(cols).to_numpy().astype(float)
        )
        max_abs_diff = float(np.nanmax(np.abs(np.where(both_null, 0.0, diff)))) if diff.size else 0.0
        agree = bool(np.all(both_null | (np.abs(np.nan_to_num(diff, nan=np.inf)) <= 1e-6)))
        print(f"subset agreement ({len(cols)} columns): {agree}, max |diff| {max_abs_diff:.2e}")
        online = _run_part(
            "online",
            events,
            cut_path,
            Path(tmp) / "none",
            ["--online-events", str(online_events), "--online-runs", str(online_runs)],
            repeats,
        )
        print(
            f"online ({online['events']} events, {online['features']} features): "
            f"p50 {online['p50_ms']} ms, p99 {online['p99_ms']} ms (CPU time p50 {online['cpu_p50_ms']} ms)"
        )
    speedup = ref["seconds"] / ours["seconds"]
    speedup_with_read = (ref["seconds"] + ref["read_seconds"]) / ours["seconds"]
    result = {
        "name": name,
        "events_path": str(events.relative_to(ROOT) if events.is_relative_to(ROOT) else events),
        "events_source": source,
        "events": n_events,
        "cutoff_rows": n_cut,
        "churnflow": ours,
        "pandas_reference": ref,
        "subset_agrees": agree,
        "subset_max_abs_diff": max_abs_diff,
        "offline_speedup_vs_pandas": round(speedup, 2),
        "offline_speedup_vs_pandas_incl_read": round(speedup_with_read, 2),
        "online": online,
        "repeats": repeats,
        "load_average_1m_at_start": load_at_start,
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "goals": GOALS,
        "goals_met": {
            "offline_speedup": speedup >= GOALS["offline_speedup_min"],
            "offline_seconds": ours["seconds"] <= GOALS["offline_seconds_max"],
            "online_p50": online["p50_ms"] <= GOALS["online_p50_ms_max"],
            "online_p99": online["p99_ms"] <= GOALS["online_p99_ms_max"],
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "polars": pl.__version__},
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(
        f"offline speed-up vs pandas: {speedup:.1f}x (compute only), "
        f"{speedup_with_read:.1f}x incl. pandas read"
    )
    print(f"goals met: {result['goals_met']}")
    print(markdown_summary(result))
    write_json(ROOT / "benchmarks" / "results" / f"{name}.json", result)


if __name__ == "__main__":
    app()
