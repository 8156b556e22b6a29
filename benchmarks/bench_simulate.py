"""Benchmark the simulator: wall time, events/s and peak RSS of a preset, against a reference in the same run.

Run (heavy presets under the shared lock):
    flock /tmp/churnflow-heavy.lock .venv/bin/python benchmarks/bench_simulate.py --preset full

The simulation runs in a child process so its peak RSS (``ru_maxrss`` of the child) and CPU seconds
(user + system, imports included) are its own; the machine's load average is recorded beside them. The
reference, measured in the same run, is Polars ``write_ndjson`` of an already-built frame of simulated events
(pure serialisation, no simulation): ``ratio_to_write_only`` = simulator events/s ÷ write-only events/s.
Budget ratios compare with the issue's goals (full: 300 s, 4 GiB). With calibration on, the per-user
marginals against the published mini file (meaningful for 63-day presets) and the behaviour rates per
customer-day (``calibration.behaviour_rates``, any window) are added. Writes
``benchmarks/results/simulate_<preset>.json``.
"""

from __future__ import annotations

import io
import json
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import typer

ROOT = Path(__file__).resolve().parents[1]
BUDGET_SECONDS = 300.0
BUDGET_RSS_BYTES = 4 * 1024**3

_CHILD = """
import json, resource, sys, time
from pathlib import Path
from churnflow.simulate import simulate_to_dir
t0 = time.perf_counter()
s = simulate_to_dir(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), gzip=sys.argv[4] == "1", progress=True)
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"summary": s.to_dict(), "wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime,
                  "peak_rss_bytes": ru.ru_maxrss * 1024}))
"""


def _write_only_reference(seed: int) -> dict[str, float]:
    """Events/s of Polars write_ndjson on the mini preset's events (built in memory first, not timed)."""
    import polars as pl

    from churnflow.simulate.engine import build_world, iter_event_chunks

    frame = pl.concat(list(iter_event_chunks(build_world("mini", seed), seed)))
    best = float("inf")
    for _ in range(3):
        buf = io.BytesIO()
        t0 = time.perf_counter()
        frame.write_ndjson(buf)
        best = min(best, time.perf_counter() - t0)
    return {"events": frame.height, "seconds": best, "events_per_s": frame.height / best}


def main(
    preset: str = typer.Option("full", help="Simulator preset to time."),
    seed: int = typer.Option(42, help="Seed."),
    out: Path = typer.Option(None, help="Output folder (default benchmarks/data/<preset>, gitignored)."),
    gzip: bool = typer.Option(False, help="Write gzip."),
    calibrate: bool = typer.Option(True, help="Also compare the output's marginals with the published ones."),
) -> None:
    """Time one simulation in a child process and write benchmarks/results/simulate_<preset>.json."""
    from churnflow.utils.io import write_json

    out = out or ROOT / "benchmarks" / "data" / preset
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, preset, str(seed), str(out), "1" if gzip else "0"],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    ref = _write_only_reference(seed)
    n_events = child["summary"]["n_events"]
    events_per_s = n_events / child["wall_s"]
    events_file = Path(child["summary"]["events_path"])
    result = {
        "preset": preset,
        "seed": seed,
        "gzip": gzip,
        "n_events": n_events,
        "n_users": child["summary"]["n_users"],
        "wall_s": round(child["wall_s"], 2),
        "cpu_s": round(child["cpu_s"], 2),
        "load_average_1min_after": round(__import__("os").getloadavg()[0], 2),
        "events_per_s": round(events_per_s),
        "peak_rss_bytes": child["peak_rss_bytes"],
        "peak_rss_gib": round(child["peak_rss_bytes"] / 1024**3, 3),
        "events_file_bytes": events_file.stat().st_size,
        "reference": {"what": "polars write_ndjson of the mini events frame, best of 3", **ref},
        "ratio_to_write_only": round(events_per_s / ref["events_per_s"], 3),
        "ratio_wall_to_budget_300s": round(child["wall_s"] / BUDGET_SECONDS, 3),
        "ratio_rss_to_budget_4gib": round(child["peak_rss_bytes"] / BUDGET_RSS_BYTES, 3),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "output": str(out),
    }
    if calibrate:
        import gzip as gzip_mod
        import shutil

        import polars as pl

        from churnflow.simulate import load_ground_truth
        from churnflow.simulate.calibration import (
            behaviour_rates,
            calibration_table,
            format_rates,
            format_table,
            published_rates,
        )
        from churnflow.simulate.presets import get_preset

        t0 = time.perf_counter()
        plain = events_file
        if gzip:  # scan a decompressed copy (streaming), removed afterwards
            plain = events_file.with_name("events.plain.tmp")
            with gzip_mod.open(events_file, "rb") as src, plain.open("wb") as dst:
                shutil.copyfileobj(src, dst, 16 * 1024 * 1024)
        try:
            source = pl.scan_ndjson(plain, infer_schema_length=10_000)
            rows = calibration_table(source, preset, result["n_users"])
            truth = load_ground_truth(out)
            assert truth is not None
            rates = behaviour_rates(source, truth, get_preset(preset).n_days)
        finally:
            if plain != events_file:
                plain.unlink(missing_ok=True)
        result["calibration"] = [asdict(r) for r in rows]
        result["calibration_all_within_15pct"] = all(r.within for r in rows)
        result["calibration_outside_15pct"] = [r.name for r in rows if not r.within]
        result["calibration_note"] = (
            "per-user totals of the published 63-day file"
            if get_preset(preset).n_days == 63
            else "per-user totals of a 63-day file do not apply to this window: compare 'rates'"
        )
        result["rates"] = rates
        result["rates_published_mini"] = published_rates()
        result["calibration_seconds"] = round(time.perf_counter() - t0, 1)
        print(format_table(rows))
        print(format_rates({preset: rates}, published_rates()))
    print(json.dumps({k: v for k, v in result.items() if k not in ("calibration", "rates")}, indent=2))
    write_json(ROOT / "benchmarks" / "results" / f"simulate_{preset}.json", result)


if __name__ == "__main__":
    typer.run(main)
