"""Scaling benchmark: the pipeline on small x1/x2/x4/x8 and `full`, training against rows, Spark features.

Modes (``make bench-scale`` runs pipeline, training, report):

* ``pipeline``: for each world, a throw-away copy of the committed project (``git archive HEAD``) in
  ``--root/<world>`` (git-initialised so DVC works, as tests/e2e/conftest.py does), the world simulated the
  documented way (``python stages/bootstrap_data.py --override data=<option>``), then
  ``dvc exp run -S data=<option>`` (+ ``-S +budget=<option>`` when conf/budget/<option>.yaml exists). A
  psutil poller attributes every process to its stage (the process running ``stages/<stage>.py`` and all
  its descendants: Spark JVMs, notebook kernels) and records per stage wall time, CPU time and peak RSS
  (sum over the stage's process tree); the disk use of each stage's outputs is read afterwards. Each world
  runs under the team's heavy-job lock (``/tmp/churnflow-heavy.lock``, taken here per world) and is written
  to ``benchmarks/results/scaling.json`` as soon as it finishes: a re-run skips the worlds already there
  (``--force`` re-runs them), so a crash loses one world at most.
* ``spark``: in a world's copy, ``dvc exp run -S data=<option> -S features.engine=spark features`` (timed
  like the pipeline) and the Spark table compared with the Polars engine's table of the pipeline run.
* ``training``: the `full` run's training table (every labelled (user, cutoff) row) resampled by user with
  replacement to 1x, 4x, 16x its rows; the tuned LightGBM (artifacts/best_params.json + model.fixed) fitted
  in a fresh process per size, timed, peak RSS recorded; linear extrapolation to the rows where one
  machine's memory runs out.
* ``report``: tables, the fitted log-log exponents (time vs events, on the family small..small_x8), the
  plot ``docs/scaling_loglog.png``, ``benchmarks/results/scaling.json`` and ``scale_full.json``.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.sandbox: the project copy's environment, shared with the e2e tests
from tests.sandbox import sandbox_env  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
SCALING_JSON = RESULTS / "scaling.json"
FULL_JSON = RESULTS / "scale_full.json"
PLOT = REPO / "docs" / "scaling_loglog.png"
DOC = REPO / "docs" / "scaling.md"
LOCK = Path("/tmp/churnflow-heavy.lock")
VENV_BIN = Path(sys.executable).parent
#: the scaling family (same 140 days, users x1, x2, x4, x8) and the 12 GB export's size
FAMILY = ["small", "small_x2", "standard", "small_x8"]
WORLDS = [*FAMILY, "full"]
MULTIPLE = {"small": 1, "small_x2": 2, "standard": 4, "small_x8": 8}
STAGE_RE = re.compile(r"stages/(\w+)\.py")
GB = 1024**3
MACHINE_MEMORY_GB = round(psutil.virtual_memory().total / GB, 1)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


@contextmanager
def heavy_lock(what: str):
    """The team's heavy-job lock (flock on /tmp/churnflow-heavy.lock) for the duration of ``what``.

    ``CHURNFLOW_HEAVY_LOCK_HELD=1``: a caller holds it already (``flock LOCK env CHURNFLOW_HEAVY_LOCK_HELD=1
    ...`` around several modes, so they run back to back instead of queueing again each time).
    """
    if os.environ.get("CHURNFLOW_HEAVY_LOCK_HELD") == "1":
        log(f"heavy-job lock held by the caller: {what}")
        yield
        return
    with open(LOCK, "a") as fh:
        t0 = time.time()
        log(f"waiting for the heavy-job lock ({what})")
        fcntl.flock(fh, fcntl.LOCK_EX)
        log(f"lock held after {time.time() - t0:.0f} s: {what}")
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------- process monitor
@dataclass
class StageUse:
    start: float = float("inf")
    end: float = 0.0
    peak_rss: int = 0
    cpu: dict[int, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        return {
            "wall_s": round(self.end - self.start, 2),
            "cpu_s": round(sum(self.cpu.values()), 2),
            "peak_rss_gb": round(self.peak_rss / GB, 3),
        }


class TreeMonitor(threading.Thread):
    """Polls a process tree; a process belongs to the stage whose ``stages/<stage>.py`` it or an ancestor
    runs (else to ``other``). Records per stage first/last seen, CPU seconds, peak summed RSS."""

    def __init__(self, root: psutil.Process, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.stages: dict[str, StageUse] = defaultdict(StageUse)
        self.peak_total = 0
        self._stage_of: dict[int, str | None] = {}
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def _sample(self) -> None:
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        now = time.time()
        parent: dict[int, int] = {}
        rss: dict[int, int] = {}
        for p in procs:
            try:
                with p.oneshot():
                    rss[p.pid] = p.memory_info().rss
                    parent[p.pid] = p.ppid()
                    if p.pid not in self._stage_of:
                        m = STAGE_RE.search(" ".join(p.cmdline()))
                        self._stage_of[p.pid] = m.group(1) if m else None
                    cpu = p.cpu_times()
                    cpu_s = cpu.user + cpu.system  # children are polled themselves
                    created = p.create_time()
            except psutil.Error:
                continue
            stage = self._resolve(p.pid, parent)
            use = self.stages[stage]
            use.start = min(use.start, created) if stage != "other" else min(use.start, now)
            use.end = now
            use.cpu[p.pid] = max(use.cpu.get(p.pid, 0.0), cpu_s)
        per_stage: dict[str, int] = defaultdict(int)
        for pid, r in rss.items():
            per_stage[self._resolve(pid, parent)] += r
        for stage, total in per_stage.items():
            self.stages[stage].peak_rss = max(self.stages[stage].peak_rss, total)
        self.peak_total = max(self.peak_total, sum(rss.values()))

    def _resolve(self, pid: int, parent: dict[int, int]) -> str:
        seen = 0
        while pid in parent and seen < 64:
            stage = self._stage_of.get(pid)
            if stage:
                return stage
            pid, seen = parent[pid], seen + 1
        return "other"

    def run(self) -> None:
        while not self._halt.is_set():
            self._sample()
            self._halt.wait(self.interval)
        self._sample()


def monitored(cmd: list[str], cwd: Path, env: dict[str, str], logfile: Path) -> dict[str, Any]:
    """Run ``cmd`` (output to ``logfile``), polling its process tree; raise with the log tail on failure."""
    t0, busy0 = time.time(), machine_busy_s()
    with open(logfile, "a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        mon = TreeMonitor(psutil.Process(proc.pid))
        mon.start()
        rc = proc.wait()
        mon.stop()
    wall, busy = time.time() - t0, machine_busy_s() - busy0
    own = sum(sum(u.cpu.values()) for u in mon.stages.values())
    if rc != 0:
        tail = logfile.read_text()[-4000:]
        raise RuntimeError(f"{' '.join(cmd)} failed ({rc}) in {cwd}\n{tail}")
    stages = {k: v.as_dict() for k, v in mon.stages.items() if k != "other"}
    return {
        "wall_s": round(wall, 2),
        "peak_rss_gb": round(mon.peak_total / GB, 3),
        "cpu_s": round(own, 1),
        # cores kept busy by other processes on the shared machine meanwhile (the timings' context)
        "other_cores_busy": round(max(busy - own, 0.0) / wall, 2),
        "stages": stages,
    }


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (every core, every process) since boot."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


# --------------------------------------------------------------------------------------- project copies
def copy_env(dest: Path) -> dict[str, str]:
    """The copy's isolated environment (the one the end-to-end tests use)."""
    return sandbox_env(dest, "churnflow-bench")


def make_copy(dest: Path, raw_dir: str, keep_raw: bool) -> dict[str, str]:
    """``dest`` = the committed project (git archive HEAD), git-initialised; the raw folder kept if asked."""
    if dest.exists():
        for child in dest.iterdir():
            if keep_raw and child.name == Path(raw_dir).parts[0]:
                continue
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    # the default world's data.dvc and the lock of the default run do not describe this world
    (dest / "data.dvc").unlink(missing_ok=True)
    (dest / "dvc.lock").unlink(missing_ok=True)
    with open(dest / ".gitignore", "a") as fh:
        fh.write("/.homes/\n/bench.log\n/.bench_*.json\n")
    env = copy_env(dest)
    for args in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "bench copy"]):
        subprocess.run(args, cwd=dest, env=env, check=True, capture_output=True)
    return env


def dir_bytes(path: Path) -> int:
    """Bytes on disk under ``path`` (du: hard links counted once)."""
    if not path.exists():
        return 0
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


def stage_outputs(dest: Path) -> dict[str, list[str]]:
    import yaml

    spec = yaml.safe_load((dest / "dvc.yaml").read_text())["stages"]
    outs: dict[str, list[str]] = {}
    for name, stage in spec.items():
        paths = []
        for key in ("outs", "metrics", "plots"):
            for entry in stage.get(key, []) or []:
                paths.append(entry if isinstance(entry, str) else next(iter(entry)))
        outs[name] = paths
    return outs


def world_facts(dest: Path) -> dict[str, Any]:
    import polars as pl
    import pyarrow.parquet as pq

    labels = json.loads((dest / "reports" / "churn_definition.json").read_text())
    users = pl.scan_parquet(dest / "artifacts" / "events.parquet").select(pl.col("user_id").n_unique())
    quality = json.loads((dest / "reports" / "quality.json").read_text())
    metrics = json.loads((dest / "reports" / "metrics.json").read_text())
    best = json.loads((dest / "artifacts" / "best_params.json").read_text())
    return {
        "events": int(quality["loaded"]),
        "identified_events": int(quality["loaded_users"]),
        "users": int(users.collect().item()),
        "labelled_users": int(labels["n_users"]),
        "lines_read": int(quality["lines_read"]),
        "feature_rows": pq.ParquetFile(dest / "artifacts" / "features.parquet").metadata.num_rows,
        "feature_columns": pq.ParquetFile(dest / "artifacts" / "features.parquet").metadata.num_columns,
        "label_rows": pq.ParquetFile(dest / "artifacts" / "labels.parquet").metadata.num_rows,
        "budgets": metrics.get("budgets"),
        "tune_budget": best.get("budget"),
        "test_roc_auc": metrics.get("test", {}).get("roc_auc"),
    }


def option_args(option: str) -> list[str]:
    args = ["-S", f"data={option}"]
    if (REPO / "conf" / "budget" / f"{option}.yaml").is_file():
        args += ["-S", f"+budget={option}"]
    return args


def raw_dir_of(option: str) -> str:
    sys.path.insert(0, str(REPO / "src"))
    import tempfile

    from churnflow.config import load_config
    from churnflow.config.params import write_params

    with tempfile.TemporaryDirectory() as tmp:
        write_params(REPO / "conf", Path(tmp) / "p.yaml", [f"data={option}"])
        return load_config(Path(tmp) / "p.yaml").data.raw_dir


def load_results() -> dict[str, Any]:
    return json.loads(SCALING_JSON.read_text()) if SCALING_JSON.is_file() else {"worlds": {}}


def save_results(results: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = SCALING_JSON.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    tmp.replace(SCALING_JSON)


def commit_of_repo() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()


def run_world(world: str, root: Path) -> dict[str, Any]:
    dest = root / world
    raw = raw_dir_of(world)
    sim_record = dest / ".bench_simulate.json"
    keep = sim_record.is_file()
    simulate = json.loads(sim_record.read_text()) if keep else None
    commit = commit_of_repo()  # the commit archived into the copy
    env = make_copy(dest, raw, keep_raw=keep)
    logfile = dest / "bench.log"
    if simulate is None:
        log(f"{world}: simulating into {raw}/")
        simulate = monitored(
            ["python", "stages/bootstrap_data.py", "--override", f"data={world}"], dest, env, logfile
        )
        simulate["stages"] = {}
        simulate["raw_bytes"] = dir_bytes(dest / raw)
        sim_record.write_text(json.dumps(simulate))
    log(f"{world}: simulate {simulate['wall_s']:.0f} s, {simulate['raw_bytes'] / GB:.2f} GB raw")
    cmd = ["dvc", "exp", "run", *option_args(world)]
    log(f"{world}: {' '.join(cmd)} (log: {logfile})")
    run = monitored(cmd, dest, env, logfile)
    outs = stage_outputs(dest)
    for stage, use in run["stages"].items():
        use["output_bytes"] = sum(dir_bytes(dest / p) for p in outs.get(stage, []))
    facts = world_facts(dest)
    record = {
        "option": world,
        "command": " ".join(cmd),
        "commit": commit,
        "simulate": {
            k: simulate[k]
            for k in ("wall_s", "peak_rss_gb", "raw_bytes", "other_cores_busy")
            if k in simulate
        },
        "pipeline": {k: run[k] for k in ("wall_s", "peak_rss_gb", "cpu_s", "other_cores_busy") if k in run},
        "stages": run["stages"],
        "disk": {
            "raw_bytes": dir_bytes(dest / raw),
            "artifacts_bytes": dir_bytes(dest / "artifacts"),
            "reports_bytes": dir_bytes(dest / "reports"),
            "dvc_cache_bytes": dir_bytes(dest / ".dvc" / "cache"),
            "project_bytes": dir_bytes(dest),
        },
        **facts,
    }
    if world in MULTIPLE:
        record["multiple_of_small"] = MULTIPLE[world]
    return record


def mode_pipeline(args: argparse.Namespace) -> None:
    results = load_results()
    for world in args.worlds:
        if world in results["worlds"] and not args.force:
            log(f"{world}: already in {SCALING_JSON.name} (--force re-runs it)")
            continue
        with heavy_lock(f"bench_scale pipeline {world}"):
            record = run_world(world, args.root)
        results = load_results()  # another mode may have written meanwhile
        results["worlds"][world] = record
        save_results(results)
        print_world(world, record)
    mode_report(args)


# --------------------------------------------------------------------------------------- spark features
def mode_spark(args: argparse.Namespace) -> None:
    import polars as pl

    results = load_results()
    for world in args.worlds:
        dest = args.root / world
        if not (dest / "artifacts" / "features.parquet").is_file():
            log(f"{world}: no pipeline run in {dest}: run the pipeline mode first")
            continue
        if world in results.get("spark", {}) and not args.force:
            log(f"{world}: spark already measured")
            continue
        env = copy_env(dest)
        polars_copy = dest / ".bench_features_polars.parquet"
        if not polars_copy.is_file():
            shutil.copy2(dest / "artifacts" / "features.parquet", polars_copy)
        cmd = ["dvc", "exp", "run", *option_args(world), "-S", "features.engine=spark", "features"]
        with heavy_lock(f"bench_scale spark {world}"):
            log(f"{world}: {' '.join(cmd)}")
            run = monitored(cmd, dest, env, dest / "bench.log")
        spark_table = pl.read_parquet(dest / "artifacts" / "features.parquet")
        polars_table = pl.read_parquet(polars_copy)
        equal = spark_table.equals(polars_table)
        record = {
            "command": " ".join(cmd),
            "features": run["stages"].get("features"),
            "equals_polars_engine": bool(equal),
            "rows": spark_table.height,
            "polars_features": load_results()["worlds"].get(world, {}).get("stages", {}).get("features"),
        }
        # restore the Polars table so the copy's workspace matches its last full run
        shutil.copy2(polars_copy, dest / "artifacts" / "features.parquet")
        results = load_results()
        results.setdefault("spark", {})[world] = record
        save_results(results)
        log(f"{world}: spark features {record['features']} equal to polars: {equal}")


# --------------------------------------------------------------------------------------- training
def fit_once(args: argparse.Namespace) -> None:
    """Child process: resample the full run's training table ``args.scale`` times by user and fit."""
    import polars as pl

    from churnflow.config import load_config
    from churnflow.models.factory import fit_model, merge_params
    from churnflow.models.training import join_features_labels

    dest = args.root / "full"
    cfg = load_config(dest / "params.yaml")
    best = json.loads((dest / "artifacts" / "best_params.json").read_text())
    t0 = time.time()
    data = join_features_labels(
        pl.read_parquet(dest / "artifacts" / "features.parquet"),
        pl.read_parquet(dest / "artifacts" / "labels.parquet"),
    )
    frame = data.frame
    x1 = frame.select([pl.col(n).cast(pl.Float64) for n in data.feature_names]).to_numpy()
    y1 = frame.get_column("label").cast(pl.Int64).to_numpy()
    # resample users with replacement: each drawn copy of a user brings all of its rows
    codes = frame.select(pl.col("user_id").rank("dense") - 1).to_series().to_numpy()
    n_users = int(codes.max()) + 1
    if args.scale == 1:
        idx = np.arange(len(y1))
    else:
        rng = np.random.default_rng(cfg.seed)
        copies = np.bincount(rng.integers(0, n_users, size=n_users * args.scale), minlength=n_users)
        idx = np.repeat(np.arange(len(y1)), copies[codes])
    del frame, data
    x, y = (x1, y1) if args.scale == 1 else (x1[idx], y1[idx])
    del x1
    prep = time.time() - t0
    rss_before = psutil.Process().memory_info().rss
    params = merge_params(cfg.model.fixed, best["params"])
    t1 = time.time()
    fit_model(
        cfg.model.name,
        params,
        x,
        y,
        feature_names=[f"f{i}" for i in range(x.shape[1])],
        seed=cfg.seed,
        class_weight=cfg.train.class_weight,
    )
    fit = time.time() - t1
    print(
        json.dumps(
            {
                "rows": int(x.shape[0]),
                "users_drawn": int(n_users * args.scale),
                "features": int(x.shape[1]),
                "matrix_gb": x.nbytes / GB,
                "prepare_s": prep,
                "fit_s": fit,
                "rss_before_fit_gb": rss_before / GB,
                "params": params,
            }
        )
    )


def mode_training(args: argparse.Namespace) -> None:
    results = load_results()
    training = results.get("training", {"sizes": {}})
    for scale in args.scales:
        key = f"{scale}x"
        if key in training["sizes"] and not args.force:
            log(f"training {key}: already measured")
            continue
        cmd = [sys.executable, __file__, "_fit", "--scale", str(scale), "--root", str(args.root)]
        logfile = args.root / "training.log"
        with heavy_lock(f"bench_scale training {key}"):
            log(f"training {key}: resample + fit")
            t0 = time.time()
            with open(logfile, "a") as err:
                proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
                mon = TreeMonitor(psutil.Process(proc.pid))
                mon.start()
                out, _ = proc.communicate()
                mon.stop()
        if proc.returncode != 0:
            raise RuntimeError(f"training {key} failed: see {logfile}")
        rec = json.loads(out.strip().splitlines()[-1])
        rec.update({"wall_s": round(time.time() - t0, 2), "peak_rss_gb": round(mon.peak_total / GB, 3)})
        training["sizes"][key] = rec
        log(
            f"training {key}: {rec['rows']:,} rows, fit {rec['fit_s']:.1f} s, "
            f"peak {rec['peak_rss_gb']:.2f} GB"
        )
        results = load_results()
        results["training"] = training
        save_results(results)
    results = load_results()
    results["training"] = {**training, **training_limits(training["sizes"])}
    save_results(results)
    print_training(results["training"])


def training_limits(sizes: dict[str, Any]) -> dict[str, Any]:
    """Linear fits of peak memory and fit time against rows; rows where memory reaches the limits."""
    if len(sizes) < 2:
        return {}
    rows = np.array([s["rows"] for s in sizes.values()], dtype=float)
    mem = np.array([s["peak_rss_gb"] for s in sizes.values()])
    fit_s = np.array([s["fit_s"] for s in sizes.values()])
    m_slope, m_icpt = np.polyfit(rows, mem, 1)
    t_slope, t_icpt = np.polyfit(rows, fit_s, 1)
    t_exp = float(np.polyfit(np.log(rows), np.log(fit_s), 1)[0])
    limits = {}
    for name, gb in (("stage_budget_12gb", 12.0), (f"machine_{MACHINE_MEMORY_GB:g}gb", MACHINE_MEMORY_GB)):
        r = (gb - m_icpt) / m_slope
        limits[name] = {"rows": int(r), "fit_s": round(float(t_slope * r + t_icpt), 1)}
    return {
        "memory_gb_per_million_rows": round(float(m_slope * 1e6), 3),
        "memory_intercept_gb": round(float(m_icpt), 3),
        "fit_s_per_million_rows": round(float(t_slope * 1e6), 2),
        "fit_time_exponent": round(t_exp, 3),
        "limits": limits,
    }


# --------------------------------------------------------------------------------------- report
def slope(x: list[float], y: list[float]) -> float:
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def mode_report(args: argparse.Namespace) -> None:
    results = load_results()
    worlds = results["worlds"]
    for world, record in worlds.items():  # facts read again from the copies (a fix to them needs no re-run)
        if (args.root / world / "reports" / "metrics.json").is_file():
            record.update(world_facts(args.root / world))
    fam = [w for w in FAMILY if w in worlds]
    if len(fam) >= 2:
        ev = [worlds[w]["events"] for w in fam]
        results["exponent"] = {
            "fitted_on": fam,
            "features": round(slope(ev, [worlds[w]["stages"]["features"]["wall_s"] for w in fam]), 3),
            "pipeline": round(slope(ev, [worlds[w]["pipeline"]["wall_s"] for w in fam]), 3),
            "pipeline_with_simulate": round(
                slope(ev, [worlds[w]["pipeline"]["wall_s"] + worlds[w]["simulate"]["wall_s"] for w in fam]), 3
            ),
        }
        # CPU seconds of the stages' own processes: less sensitive than wall time to other jobs on the machine
        results["exponent"]["features_cpu"] = round(
            slope(ev, [worlds[w]["stages"]["features"]["cpu_s"] for w in fam]), 3
        )
        if "full" in worlds:  # the family and the export's size together
            ws = [*fam, "full"]
            evf = [worlds[w]["events"] for w in ws]
            results["exponent"]["with_full"] = {
                "features": round(slope(evf, [worlds[w]["stages"]["features"]["wall_s"] for w in ws]), 3),
                "pipeline": round(slope(evf, [worlds[w]["pipeline"]["wall_s"] for w in ws]), 3),
            }
        # without `report`: the first runs (small, small_x2) counted its exited notebook processes twice
        results["exponent"]["pipeline_cpu_without_report"] = round(
            slope(
                ev, [sum(u["cpu_s"] for k, u in worlds[w]["stages"].items() if k != "report") for w in fam]
            ),
            3,
        )
        results["exponent"].pop("pipeline_cpu", None)
        per_stage = {}
        for stage in worlds[fam[0]]["stages"]:
            per_stage[stage] = round(
                slope(ev, [max(worlds[w]["stages"][stage]["wall_s"], 0.01) for w in fam]), 3
            )
        results["exponent"]["per_stage"] = per_stage
    if "full" in worlds:
        f = worlds["full"]
        results["full"] = {
            "events": f["events"],
            "users": f["users"],
            "pipeline_wall_s": f["pipeline"]["wall_s"],
            "pipeline_peak_rss_gb": f["pipeline"]["peak_rss_gb"],
            "stages": {
                s: {"wall_s": u["wall_s"], "peak_rss_gb": u["peak_rss_gb"]} for s, u in f["stages"].items()
            },
        }
        FULL_JSON.write_text(
            json.dumps(
                {
                    "world": "full",
                    "command": f["command"],
                    "commit": f["commit"],
                    "machine": {"cores": psutil.cpu_count(), "memory_gb": MACHINE_MEMORY_GB},
                    "events": f["events"],
                    "users": f["users"],
                    "feature_rows": f["feature_rows"],
                    "label_rows": f["label_rows"],
                    "budgets": f["budgets"],
                    "tune_budget": f["tune_budget"],
                    "simulate": f["simulate"],
                    "pipeline": f["pipeline"],
                    "stages": f["stages"],
                    "disk": f["disk"],
                    "max_stage_peak_rss_gb": max(u["peak_rss_gb"] for u in f["stages"].values()),
                    "under_12gb_every_stage": all(u["peak_rss_gb"] < 12 for u in f["stages"].values()),
                },
                indent=2,
                sort_keys=True,
            )
            + "\n"
        )
    results["machine"] = {"cores": psutil.cpu_count(), "memory_gb": MACHINE_MEMORY_GB}
    save_results(results)
    print_table(results)
    plot(results)
    if DOC.is_file():
        DOC.write_text(fill_doc(DOC.read_text(), results))
        log(f"tables in {DOC.relative_to(REPO)} rewritten from {SCALING_JSON.name}")


STAGE_ORDER = [
    "load",
    "label",
    "features",
    "tune",
    "train",
    "evaluate",
    "drift_baseline",
    "report",
    "package",
]


def stage_rank(stage: str) -> int:
    return STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER)


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f}"


def doc_tables(results: dict[str, Any]) -> dict[str, str]:
    """Markdown blocks of docs/scaling.md, each rendered from scaling.json (the doc never disagrees)."""
    worlds = results["worlds"]
    blocks: dict[str, str] = {}
    rows = [
        "| world | users | events | raw MB | simulate s | features s (CPU s) | features peak GB "
        "| pipeline s (CPU s) | largest stage peak GB | other jobs' cores |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for w in WORLDS:
        if w not in worlds:
            continue
        r = worlds[w]
        f = r["stages"]["features"]
        big = max(r["stages"].values(), key=lambda u: u["peak_rss_gb"])["peak_rss_gb"]
        name = f"{w} (x{r['multiple_of_small']})" if "multiple_of_small" in r else w
        rows.append(
            f"| {name} | {r['users']:,} | {r['events']:,} | {_mb(r['simulate']['raw_bytes'])} "
            f"| {r['simulate']['wall_s']:.0f} | {f['wall_s']:.1f} ({f['cpu_s']:.1f}) "
            f"| {f['peak_rss_gb']:.2f} "
            f"| {r['pipeline']['wall_s']:.0f} ({sum(u['cpu_s'] for u in r['stages'].values()):.0f}) "
            f"| {big:.2f} | {r['pipeline'].get('other_cores_busy', float('nan')):.2f} |"
        )
    exp = results.get("exponent")
    if exp:
        rows.append("")
        rows.append(
            f"Fitted log-log slope of wall time against events on {', '.join(exp['fitted_on'])}: "
            f"**features {exp['features']}**, **whole pipeline {exp['pipeline']}** "
            f"(with the simulation {exp['pipeline_with_simulate']}); on the stages' CPU seconds: features "
            f"{exp['features_cpu']}, pipeline without report {exp['pipeline_cpu_without_report']}; "
            + (
                f"the family and `full` together: features {exp['with_full']['features']}, "
                f"pipeline {exp['with_full']['pipeline']}; "
                if "with_full" in exp
                else ""
            )
            + "per stage (wall): "
            + ", ".join(f"{k} {v}" for k, v in exp["per_stage"].items())
            + "."
        )
    blocks["table"] = "\n".join(rows)
    if "full" in worlds:
        r = worlds["full"]
        rows = [
            f"`{r['command']}` (commit {r['commit']}): {r['events']:,} events of {r['users']:,} users, "
            f"{r['feature_rows']:,} feature rows x {r['feature_columns'] - 2} features, "
            f"{r['label_rows']:,} label rows; simulated in {r['simulate']['wall_s']:.0f} s "
            f"({_mb(r['simulate']['raw_bytes'])} MB of JSON, peak {r['simulate']['peak_rss_gb']:.2f} GB); "
            f"`dvc exp run` {r['pipeline']['wall_s']:.0f} s (other jobs kept "
            f"{r['pipeline'].get('other_cores_busy', float('nan')):.2f} of the 2 cores busy meanwhile). "
            f"Largest stage peak: {max(u['peak_rss_gb'] for u in r['stages'].values()):.2f} GB "
            "(budget: 12 GB per stage).",
            "",
            "| stage | wall s | CPU s | peak RSS GB | outputs MB |",
            "|---|---:|---:|---:|---:|",
        ]
        for st, u in sorted(r["stages"].items(), key=lambda kv: stage_rank(kv[0])):
            rows.append(
                f"| {st} | {u['wall_s']:.1f} | {u['cpu_s']:.1f} | {u['peak_rss_gb']:.2f} "
                f"| {_mb(u['output_bytes'])} |"
            )
        b = r.get("budgets") or {}
        tb = r.get("tune_budget") or {}
        rows.append("")
        rows.append(
            f"Budgets used (reports/metrics.json `budgets`): tuning on {tb.get('train_rows', 0):,} of "
            f"{tb.get('train_rows_available', 0):,} tuning-train rows (`tune.max_rows` "
            f"{tb.get('max_rows', 0):,}), the oracle on {b.get('oracle_rows', 0):,} of "
            f"{b.get('test_rows', 0):,} test rows "
            f"(`evaluate.oracle_max_rows` {b.get('oracle_max_rows', 0):,}), "
            f"SHAP on {b.get('shap_rows', 0):,} rows, {b.get('bootstrap_samples', 0):,} bootstrap samples. "
            f"Disk: raw {_mb(r['disk']['raw_bytes'])} MB, artifacts {_mb(r['disk']['artifacts_bytes'])} MB, "
            f"DVC cache {_mb(r['disk']['dvc_cache_bytes'])} MB (hard links: the copy's whole folder is "
            f"{_mb(r['disk']['project_bytes'])} MB)."
        )
        blocks["full"] = "\n".join(rows)
    t = results.get("training")
    if t and t.get("sizes"):
        rows = [
            "| size | rows | matrix GB | fit s | peak RSS GB |",
            "|---|---:|---:|---:|---:|",
        ]
        for k, sz in sorted(t["sizes"].items(), key=lambda kv: int(kv[0].rstrip("x"))):
            rows.append(
                f"| {k} | {sz['rows']:,} | {sz['matrix_gb']:.2f} | {sz['fit_s']:.1f} "
                f"| {sz['peak_rss_gb']:.2f} |"
            )
        if "limits" in t:
            rows.append("")
            base = t["sizes"]["1x"]["rows"] if "1x" in t["sizes"] else float("nan")
            names = {"stage_budget_12gb": "the 12 GB stage budget"}
            lim = "; ".join(
                f"{names.get(name, 'the machine (' + name.split('_')[1].upper() + ')')} at "
                f"~{v['rows'] / 1e6:.1f} M rows, {v['rows'] / base:.0f}x `full`'s table "
                f"(fit ~{v['fit_s'] / 60:.0f} min)"
                for name, v in sorted(t["limits"].items(), key=lambda kv: kv[1]["rows"])
            )
            rows.append(
                f"Linear in rows: {t['memory_gb_per_million_rows']} GB and "
                f"{t['fit_s_per_million_rows']} s of fit per million rows "
                f"(fit-time exponent {t['fit_time_exponent']}). Memory reaches {lim}."
            )
        blocks["training"] = "\n".join(rows)
    sp = results.get("spark")
    if sp:
        rows = [
            "| world | engine | wall s | CPU s | peak RSS GB | equal to polars |",
            "|---|---|---:|---:|---:|---|",
        ]
        for w, rec in sp.items():
            pf, sf = rec.get("polars_features") or {}, rec["features"] or {}
            if pf:
                rows.append(
                    f"| {w} | polars | {pf['wall_s']:.1f} | {pf['cpu_s']:.1f} | {pf['peak_rss_gb']:.2f} | |"
                )
            rows.append(
                f"| {w} | spark local[2] | {sf.get('wall_s', 0):.1f} | {sf.get('cpu_s', 0):.1f} "
                f"| {sf.get('peak_rss_gb', 0):.2f} | {'yes' if rec['equals_polars_engine'] else 'NO'} "
                f"({rec['rows']:,} rows) |"
            )
        blocks["spark"] = "\n".join(rows)
    return blocks


def fill_doc(text: str, results: dict[str, Any]) -> str:
    """Replace each ``<!-- scaling:NAME -->`` ... ``<!-- /scaling:NAME -->`` block with its table."""
    for name, body in doc_tables(results).items():
        pattern = re.compile(rf"(<!-- scaling:{name} -->\n).*?(\n<!-- /scaling:{name} -->)", re.S)
        text = pattern.sub(lambda m, body=body: m.group(1) + body + m.group(2), text)
    return text


def print_world(world: str, r: dict[str, Any]) -> None:
    print(
        f"\n{world}: {r['events']:,} events, {r['users']:,} users, pipeline {r['pipeline']['wall_s']:.0f} s"
    )
    print(f"  {'stage':<16}{'wall s':>9}{'cpu s':>9}{'peak GB':>9}{'out MB':>10}")
    for s, u in r["stages"].items():
        print(
            f"  {s:<16}{u['wall_s']:>9.1f}{u['cpu_s']:>9.1f}{u['peak_rss_gb']:>9.2f}"
            f"{u['output_bytes'] / 2**20:>10.1f}"
        )


def print_table(results: dict[str, Any]) -> None:
    print(
        f"\n{'world':<10}{'events':>12}{'users':>8}{'sim s':>8}{'feat s':>8}{'feat GB':>8}"
        f"{'pipe s':>8}{'pipe GB':>8}"
    )
    for w in WORLDS:
        r = results["worlds"].get(w)
        if r is None:
            continue
        f = r["stages"]["features"]
        print(
            f"{w:<10}{r['events']:>12,}{r['users']:>8,}{r['simulate']['wall_s']:>8.0f}{f['wall_s']:>8.1f}"
            f"{f['peak_rss_gb']:>8.2f}{r['pipeline']['wall_s']:>8.0f}{r['pipeline']['peak_rss_gb']:>8.2f}"
        )
    if "exponent" in results:
        print(f"log-log exponent (time vs events, {results['exponent']['fitted_on']}): {results['exponent']}")


def print_training(t: dict[str, Any]) -> None:
    print(f"\n{'size':<6}{'rows':>12}{'matrix GB':>10}{'fit s':>9}{'peak GB':>9}")
    for k, s in sorted(t["sizes"].items(), key=lambda kv: int(kv[0].rstrip("x"))):
        print(f"{k:<6}{s['rows']:>12,}{s['matrix_gb']:>10.2f}{s['fit_s']:>9.1f}{s['peak_rss_gb']:>9.2f}")
    if "limits" in t:
        print(f"limits (linear in rows): {t['limits']}")


def plot(results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    worlds = results["worlds"]
    names = [w for w in WORLDS if w in worlds]
    if not names:
        return
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.4))
    series = {
        "whole pipeline": lambda r: (r["pipeline"]["wall_s"], r["pipeline"]["peak_rss_gb"]),
        "features": lambda r: (r["stages"]["features"]["wall_s"], r["stages"]["features"]["peak_rss_gb"]),
        "load": lambda r: (r["stages"]["load"]["wall_s"], r["stages"]["load"]["peak_rss_gb"]),
        "simulate": lambda r: (r["simulate"]["wall_s"], r["simulate"]["peak_rss_gb"]),
    }
    for label, get in series.items():
        ev = [worlds[w]["events"] for w in names]
        t, m = zip(*(get(worlds[w]) for w in names), strict=True)
        ax_t.plot(ev, t, "o-", label=label)
        ax_m.plot(ev, m, "o-", label=label)
    ev_all = [worlds[w]["events"] for w in names]
    ref = np.array([min(ev_all), max(ev_all)], dtype=float)
    base = worlds[names[0]]["pipeline"]["wall_s"]
    ax_t.plot(ref, base * ref / ref[0], "k:", lw=1, label="linear (slope 1)")
    for w in names:
        ax_t.annotate(
            w,
            (worlds[w]["events"], worlds[w]["pipeline"]["wall_s"]),
            textcoords="offset points",
            xytext=(4, 6),
            fontsize=8,
        )
    ax_m.axhline(12, color="r", ls="--", lw=1, label="12 GB per-stage budget")
    exp = results.get("exponent", {})
    ax_t.set_title(
        f"wall time vs events (fitted slope: pipeline {exp.get('pipeline', float('nan')):.2f}, "
        f"features {exp.get('features', float('nan')):.2f})",
        fontsize=9,
    )
    ax_m.set_title("peak RSS of the stage's process tree", fontsize=9)
    for ax, ylabel in ((ax_t, "seconds"), (ax_m, "GB")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("events")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(
        f"churnflow on {psutil.cpu_count()} cores: small x1, x2, x4 (standard), x8 and full", fontsize=10
    )
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=110, metadata={"Software": None})
    plt.close(fig)
    log(f"plot: {PLOT}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "mode", nargs="?", default="all", choices=["all", "pipeline", "spark", "training", "report", "_fit"]
    )
    parser.add_argument("--worlds", nargs="+", default=WORLDS, choices=WORLDS)
    parser.add_argument("--root", type=Path, default=Path("/tmp/scale"), help="folder of the project copies")
    parser.add_argument("--scales", nargs="+", type=int, default=[1, 4, 16])
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--force", action="store_true", help="re-run what is already in scaling.json")
    args = parser.parse_args()
    if args.mode == "all":  # `make bench` runs every benchmark without arguments: the whole sequence
        mode_pipeline(args)
        mode_training(args)
        args.worlds = ["small"]
        mode_spark(args)
        mode_report(args)
        return
    if args.mode == "spark" and args.worlds == WORLDS:
        args.worlds = ["small"]
    {
        "pipeline": mode_pipeline,
        "spark": mode_spark,
        "training": mode_training,
        "report": mode_report,
        "_fit": fit_once,
    }[args.mode](args)


if __name__ == "__main__":
    main()
