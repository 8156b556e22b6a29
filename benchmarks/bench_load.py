"""Load throughput: churnflow's loader vs a plain ``pandas.read_json(lines=True)`` on the same bytes.

Prints the figures and writes ``benchmarks/results/<name>.json``. The goal (issue 4) is >= 100 MB/s of
JSON for the simulated ``full`` preset. pandas is timed on the first ``--pandas-mb`` MB of the input
(whole lines; 0 = the whole file) and churnflow is timed on that same prefix too, so the ratio compares
like with like; churnflow is also timed on the whole input, with its peak memory (RSS).

Run (heavy, so under the shared lock):
    flock /tmp/churnflow-heavy.lock .venv/bin/python benchmarks/bench_load.py \\
        --input benchmarks/data/full/events.json --parquet-out benchmarks/data/full_events.parquet
Without the full preset, ``--synth-from FILE --synth-mb N`` first builds an N MB input by repeating
FILE's lines with the user ids renamed per copy (``--input`` is where it is written).
"""

from __future__ import annotations

import os
import platform
import re
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import psutil
import typer

from churnflow.config import DataConfig
from churnflow.data.load import load_events_to_files
from churnflow.data.schema import RAW_DTYPES
from churnflow.utils.io import write_json

ROOT = Path(__file__).resolve().parents[1]
GOAL_MB_S = 100.0
_USER = re.compile(rb'"userId":"([^"]+)"')


class PeakRss:
    """Sample this process's RSS (and the 1-minute load average) every 50 ms in a thread.

    ``peak_mb`` and ``load_avg_max`` are read after the ``with`` block; the load average shows how busy
    the shared machine was while the loader ran (other processes compete for the 2 cores).
    """

    def __init__(self) -> None:
        self.peak = 0
        self.load_max = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        proc = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, proc.memory_info().rss)
            self.load_max = max(self.load_max, os.getloadavg()[0])
            time.sleep(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return self.peak / 1e6


def synthesize(source: Path, target: Path, megabytes: int) -> None:
    """Repeat ``source``'s lines (user ids suffixed ``_k`` in copy k) until ``target`` holds ``megabytes``."""
    data = source.read_bytes()
    if not data.endswith(b"\n"):
        data += b"\n"
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        copy = 0
        while out.tell() < megabytes * 1_000_000:
            suffix = f"_{copy}".encode()
            out.write(data if copy == 0 else _USER.sub(b'"userId":"\\1' + suffix + b'"', data))
            copy += 1


def prefix(path: Path, megabytes: int, target: Path) -> Path:
    """The first ``megabytes`` MB of ``path`` cut at a line end (``path`` itself when 0 or larger)."""
    if megabytes <= 0 or path.stat().st_size <= megabytes * 1_000_000:
        return path
    with path.open("rb") as src:
        head = src.read(megabytes * 1_000_000)
    target.write_bytes(head[: head.rfind(b"\n") + 1])
    return target


def time_churnflow(path: Path, out_dir: Path, events_out: Path | None = None) -> dict[str, Any]:
    """Run the loader on ``path``; seconds, MB/s, lines, peak RSS."""
    size = path.stat().st_size
    events = events_out or out_dir / "events.parquet"
    start = time.perf_counter()
    cpu_start = time.process_time()
    with PeakRss() as rss:
        _, quality = load_events_to_files(
            [path], DataConfig(), events, out_dir / "anon.parquet", progress=False
        )
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    return {
        "bytes": size,
        "seconds": round(seconds, 3),
        "mb_per_s": round(size / 1e6 / seconds, 1),
        "cpu_seconds": round(cpu_seconds, 1),
        "load_avg_1min_max_during": round(rss.load_max, 2),
        "lines_read": quality["lines_read"],
        "loaded": quality["loaded"],
        "quarantined": quality["quarantined"],
        "duplicates": quality["duplicates"],
        "peak_rss_mb": round(rss.peak_mb, 1),
    }


def time_reader(path: Path, read: Callable[[Path], Any]) -> dict[str, Any]:
    """Time one reference reader on ``path``: seconds, MB/s, rows read and peak RSS."""
    size = path.stat().st_size
    start = time.perf_counter()
    with PeakRss() as rss:
        frame = read(path)
    seconds = time.perf_counter() - start
    return {
        "bytes": size,
        "seconds": round(seconds, 3),
        "mb_per_s": round(size / 1e6 / seconds, 1),
        "rows": len(frame),
        "peak_rss_mb": round(rss.peak_mb, 1),
    }


def read_pandas(path: Path) -> pd.DataFrame:
    """The reference: a plain ``pandas.read_json(lines=True)``."""
    return pd.read_json(path, lines=True)


def read_polars_bare(path: Path) -> pl.DataFrame:
    """The decoding floor: ``pl.read_ndjson`` with the raw schema (no validation, no sort)."""
    return pl.read_ndjson(path, schema=RAW_DTYPES)


def main(
    input: Path = typer.Option(ROOT / "benchmarks/data/full/events.json", help="JSON-lines file to load"),
    name: str = typer.Option("load", help="results/<name>.json"),
    pandas_mb: int = typer.Option(512, help="MB prefix on which pandas and churnflow are compared (0 = all)"),
    parquet_out: Path | None = typer.Option(None, help="also keep the events table here"),
    synth_from: Path | None = typer.Option(None, help="build --input first by repeating this file"),
    synth_mb: int = typer.Option(1000, help="size of the synthesized input (MB)"),
) -> None:
    """Measure and write benchmarks/results/<name>.json."""
    if synth_from is not None:
        synthesize(synth_from, input, synth_mb)
    if not input.is_file():
        typer.echo(f"{input}: no such file (generate the full preset or use --synth-from)", err=True)
        raise typer.Exit(code=2)
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        work = Path(tmp)
        whole = time_churnflow(input, work, parquet_out)
        typer.echo(
            f"churnflow, whole file: {whole['bytes'] / 1e6:,.0f} MB in {whole['seconds']:.1f} s "
            f"= {whole['mb_per_s']:.1f} MB/s, peak RSS {whole['peak_rss_mb']:,.0f} MB"
        )
        same = prefix(input, pandas_mb, work / "prefix.json")
        small = time_churnflow(same, work) if same != input else whole
        panda = time_reader(same, read_pandas)
        bare = time_reader(same, read_polars_bare)
    ratio = small["seconds"] and panda["seconds"] / small["seconds"]
    typer.echo(
        f"same {panda['bytes'] / 1e6:,.0f} MB: churnflow {small['mb_per_s']:.1f} MB/s, "
        f"pandas.read_json {panda['mb_per_s']:.1f} MB/s → churnflow is {ratio:.1f}× faster"
    )
    typer.echo(f"bare pl.read_ndjson on the same prefix (decode only): {bare['mb_per_s']:.1f} MB/s")
    result = {
        "benchmark": "load",
        "input": str(input.relative_to(ROOT) if input.is_relative_to(ROOT) else input),
        "synthesized_from": str(synth_from) if synth_from else None,
        "goal_mb_per_s": GOAL_MB_S,
        "meets_goal": whole["mb_per_s"] >= GOAL_MB_S,
        "churnflow_whole_file": whole,
        "churnflow_same_prefix": small,
        "pandas_read_json_same_prefix": panda,
        "polars_read_ndjson_bare_same_prefix": bare,
        "ratio_churnflow_mb_s_over_bare_polars": round(small["mb_per_s"] / bare["mb_per_s"], 2),
        "ratio_pandas_seconds_over_churnflow_seconds": round(ratio, 2),
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_avg_start": [round(x, 2) for x in load_start],
            "load_avg_end": [round(x, 2) for x in os.getloadavg()],
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "polars": pl.__version__,
            "pandas": pd.__version__,
            "max_rss_mb_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3, 1),
        },
    }
    out = ROOT / "benchmarks" / "results" / f"{name}.json"
    write_json(out, result)
    typer.echo(f"wrote {out}")


if __name__ == "__main__":
    typer.run(main)
