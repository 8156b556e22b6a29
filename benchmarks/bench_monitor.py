"""Monitor benchmark: is the drift monitor right when it speaks?

1. **Pipelines.** Per world size, the project's own stages (load → label → features → tune → train →
   drift_baseline, the commands of ``dvc.yaml``) on that world (seed 42) in a copy of the repository's
   committed code (``git archive HEAD``) under ``benchmarks/data/monitor/pipeline_<size>`` (reused when
   present; ``tune.n_trials`` lowered — the monitor does not depend on how well the model was tuned).
   ``mini`` (225 users, 63 days) holds a purged split only with a 14-day label window (horizon 7 +
   inactivity 7 days) and 3 test cutoffs, the end-to-end test's overrides on ``tiny``; the default world
   (``standard``, 4,800 users over 140 days) keeps the configured split (6 test cutoffs, 1 validation
   cutoff, 5% held-out users). Worlds of different presets are different populations (a mini world's users
   upgrade half as often as the standard world's), so each size is checked against its own reference.
2. **Worlds.** Fresh exports of each size: ``baseline`` (no drift, seeds 43…) and the scenarios
   ``more_ads``, ``app_errors``, ``price_rise``. Each export goes through the loader and
   :func:`churnflow.monitoring.windows.window_rows` exactly as ``churnflow monitor`` does; the rows are
   cached under the pipeline (``pipeline_<size>/monitor_rows``), so a stopped run resumes where it was.
   Exports are made with the pipeline copy's own code, so the simulator of the reference world and of the
   checked worlds is the same. Worlds are made in an interleaved order (baseline and scenario seeds in
   proportion), so a run stopped by ``--stop-at`` leaves a balanced sample; the JSON states how many
   windows were planned and how many were checked.
3. **Checks.** Each export is one window checked against its size's reference with
   :func:`churnflow.monitoring.check.run_check` (no cooldown carried between worlds). Recorded: status,
   alerts by kind, drifting features, domain-classifier AUC, the label-free AUC estimate vs the realised
   AUC (pooled over the labelled rows and per cutoff), check time.
4. **Full-size dashboard** (``--full``): a ``full`` export (13,000 users over 140 days, ~26M events, ~11.9 GB
   of JSON) checked against the ``standard`` reference (the preset with the same span and the same
   population per user); the dashboard's bytes, then the page opened offline in headless Chromium with a
   screenshot under ``reports/monitor_full/``. Written to ``benchmarks/results/monitor_full.json`` as well.
   ``--full-events PATH`` checks a full world's loaded events table (another pipeline's
   ``artifacts/events.parquet``) instead of simulating and loading a new 11.9 GB export (~5 min of CPU).

Writes ``benchmarks/results/monitor.json`` (sizes not run this time are kept from the file already
there, so sizes can be measured one at a time); prints the tables that ``docs/monitoring.md`` quotes.
Run (heavy: ~10 min for mini, ~1 h for standard, ~20 min for the full dashboard on 2 cores):
``.venv/bin/python benchmarks/bench_monitor.py --sizes mini --no-full``, then ``--sizes standard`` (it takes
the team's heavy-job lock ``/tmp/churnflow-heavy.lock``, or ``$CHURNFLOW_HEAVY_LOCK``, per world and per
pipeline run, not for hours)
"""

from __future__ import annotations

import calendar
import fcntl
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import typer
import yaml

from churnflow.config import Config, load_config
from churnflow.config.params import write_params
from churnflow.utils.io import write_json

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "data" / "monitor"
PIPELINE_STAGES = ("load", "label", "features", "tune", "train", "drift_baseline")
SCENARIOS = ("more_ads", "app_errors", "price_rise")
COVARIATE = ("more_ads", "app_errors")


def _head_commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


@contextmanager
def heavy_lock(path: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (the team's lock for heavy jobs) while the block runs;
    no-op for an empty path. Taken per world, so other heavy jobs interleave with a long harness."""
    if not path:
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


LOCK = os.environ.get("CHURNFLOW_HEAVY_LOCK", "/tmp/churnflow-heavy.lock")
#: Pipelines (under a minute) and exports (seconds, < 1 GB) small enough to run without the heavy-job lock.
LIGHT_PRESETS = ("tiny", "mini")


def prepare_pipeline(dest: Path, overrides: list[str], lock: str = LOCK) -> Path:
    """Run the stages up to drift_baseline in a copy of the committed code (skipped when already done
    with the same overrides), holding ``lock`` (empty: none) while they run."""
    recorded = dest / "OVERRIDES"
    done = (dest / "artifacts" / "drift_reference.json").is_file() and (dest / "artifacts" / "model").is_dir()
    if done and recorded.is_file() and recorded.read_text().split() == overrides:
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    # the committed code (others' uncommitted edits in a shared tree are not measured); its commit recorded
    archive = subprocess.run(
        ["git", "archive", "--format=tar", "HEAD"], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    (dest / "COMMIT").write_text(_head_commit() + "\n")
    write_params(dest / "conf", dest / "params.yaml", overrides)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "MLFLOW_TRACKING_URI": f"sqlite:///{dest / 'mlflow.db'}",
            "MPLCONFIGDIR": str(dest / ".cache" / "mpl"),
            "PYTHONPATH": str(dest / "src"),
        }
    )
    run = lambda cmd: subprocess.run(cmd, cwd=dest, env=env, shell=True, check=True)  # noqa: E731
    stages = yaml.safe_load((dest / "dvc.yaml").read_text())["stages"]
    params = yaml.safe_load((dest / "params.yaml").read_text())

    def resolved(cmd: str) -> str:
        """The stage's command with DVC's ``${a.b}`` templating filled from params.yaml."""
        return re.sub(
            r"\$\{([\w.]+)\}", lambda m: str(reduce(lambda d, k: d[k], m.group(1).split("."), params)), cmd
        )

    with heavy_lock(lock):
        run(f"{sys.executable} stages/bootstrap_data.py --params params.yaml")
        for name in PIPELINE_STAGES:
            typer.echo(f"== pipeline stage {name}")
            run(resolved(" ".join(stages[name]["cmd"].split())).replace("python ", f"{sys.executable} ", 1))
    recorded.write_text("\n".join(overrides) + "\n")  # a pipeline of other overrides is rebuilt, its rows too
    return dest


#: Per world size: the pipeline's overrides (besides tune.n_trials).
SIZES: dict[str, list[str]] = {
    "mini": [
        "data=mini",
        "labels.horizon_days=7",
        "labels.inactivity_days=7",
        "train.n_test_cutoffs=3",
        "train.new_user_share=0.25",
    ],
    "standard": ["data=standard"],
}


def interleaved_plan(seeds: int, scenario_seeds: int) -> list[tuple[str, int]]:
    """(scenario, seed) worlds, baseline and scenario seeds in proportion (the i-th of n at i / n), so a run
    stopped early has checked a similar share of each."""
    plan = [(i / seeds, 0, "baseline", 43 + i) for i in range(seeds)]
    plan += [
        (i / scenario_seeds, 1 + k, sc, 43 + i)
        for k, sc in enumerate(SCENARIOS)
        for i in range(scenario_seeds)
    ]
    return [(sc, seed) for _, _, sc, seed in sorted(plan)]


#: Run in the pipeline's own copy of the code (``PYTHONPATH=<pipeline>/src``), so every export comes from
#: the same simulator, loader, label and feature code as the pipeline's world.
MAKE_ROWS = """
import sys, tempfile
from pathlib import Path
from churnflow.config import load_config
from churnflow.data.load import load_events
from churnflow.monitoring.windows import window_rows
from churnflow.simulate import simulate_to_dir
preset, scenario, seed, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
change_day = int(sys.argv[5])
cfg = load_config("params.yaml")
with tempfile.TemporaryDirectory(prefix="bench-monitor-", dir=out.parent) as tmp:
    simulate_to_dir(preset, seed, Path(tmp), scenario=scenario, progress=False, change_day=change_day)
    events = load_events([Path(tmp)], cfg.data).events
    part = out.with_suffix(".part")
    window_rows(events, cfg.labels, cfg.features).write_parquet(part, compression="zstd")
    part.replace(out)  # a stopped run leaves no half-written cache entry
"""


#: The export day a scenario's changes start on (``data.change_day``; absent: 0, the whole world). The price
#: rises on the day of the first cutoff: until then the world, its history and its customers are the
#: baseline's, then the churn hazard doubles while behaviour stays as it was until users leave — concept
#: drift that the labels of the reference's cutoff offsets see. (From day 0 the higher hazard would also
#: have shaped the customers alive at the start, which is covariate shift, not a price rise.)
CHANGE_DAY: dict[str, int] = {"price_rise": 7}


#: ``MAKE_ROWS`` from a loaded events table (the load stage's ``artifacts/events.parquet``), not an export.
ROWS_FROM_EVENTS = """
import sys
from pathlib import Path
import polars as pl
from churnflow.config import load_config
from churnflow.monitoring.windows import window_rows
events_path, out = Path(sys.argv[1]), Path(sys.argv[2])
cfg = load_config("params.yaml")
part = out.with_suffix(".part")
window_rows(pl.read_parquet(events_path), cfg.labels, cfg.features).write_parquet(part, compression="zstd")
part.replace(out)
"""


def world_cached(preset: str, scenario: str, seed: int, pipeline: Path) -> Path:
    """Where the export's rows are cached under the pipeline."""
    day = CHANGE_DAY.get(scenario, 0)
    return pipeline / "monitor_rows" / f"{preset}_{scenario}{f'_from{day}' if day else ''}_{seed}.parquet"


def world_rows(preset: str, scenario: str, seed: int, pipeline: Path) -> tuple[pl.DataFrame, float]:
    """The export's rows (cached under the pipeline), and the seconds it took to make them once the
    heavy-job lock was held (0 if cached)."""
    path = world_cached(preset, scenario, seed, pipeline)
    path.parent.mkdir(exist_ok=True)
    if not path.is_file():
        env = {**os.environ, "PYTHONPATH": str(pipeline / "src")}
        day = str(CHANGE_DAY.get(scenario, 0))
        command = [sys.executable, "-c", MAKE_ROWS, preset, scenario, str(seed), str(path), day]
        with heavy_lock(LOCK if preset not in LIGHT_PRESETS else ""):
            t0 = time.perf_counter()
            subprocess.run(command, cwd=pipeline, env=env, check=True)
            seconds = time.perf_counter() - t0
        return pl.read_parquet(path), seconds
    return pl.read_parquet(path), 0.0


def _reference_rate(windows: list[Any]) -> float | None:
    """The reference's realised churn rate over the labelled windows it was compared with (row-weighted)."""
    tested = [w for w in windows if w.labelled and w.reference_positive_rate is not None]
    rows = sum(w.n_rows for w in tested)
    return sum(w.reference_positive_rate * w.n_rows for w in tested) / rows if rows else None


def check_world(rows: pl.DataFrame, reference: dict[str, Any], model: Any, cfg: Config) -> dict[str, Any]:
    """One check; the record the summary is made of."""
    from churnflow.monitoring.check import run_check
    from churnflow.monitoring.performance import expected_roc_auc, recalibrate, roc_auc
    from churnflow.monitoring.windows import scored_rows

    t0 = time.perf_counter()
    current = scored_rows(rows, model, reference["offsets_days"])
    result, _ = run_check(reference, current, cfg.monitor, cfg.evaluate, cfg.seed)
    seconds = time.perf_counter() - t0
    labelled = current.filter(pl.col("label").is_not_null() & pl.col("in_reference"))  # like for like
    # the label-free estimate as the monitor makes it: on the scores recalibrated on the reference
    p = recalibrate(labelled["churn_probability"].to_numpy(), reference["score"].get("calibration"))
    y = labelled["label"].to_numpy()
    windows = [
        w for w in result.performance if w.labelled and w.offset_in_reference and w.realised_auc is not None
    ]
    errors = [w.estimated_auc - w.realised_auc for w in windows]  # type: ignore[operator]
    covered = [w.auc_band[0] <= w.realised_auc <= w.auc_band[1] for w in windows]  # type: ignore[operator]
    live = [a for a in result.alerts if not a.suppressed]
    return {
        "status": result.status,
        "alerts": sorted({a.kind for a in live}),
        "severities": {a.kind: a.severity for a in live},
        "n_drifting": result.summary["n_drifting"],
        "drift_share": result.summary["drift_share"],
        "drifting": [c.name for c in result.drifting],
        "score_drift": result.score.drift,
        "domain_auc": result.domain.auc if result.domain else None,
        "domain_threshold": result.domain.threshold if result.domain else None,
        "regime": result.summary["regime"],
        "users": result.window["compared_users"],
        "rows": result.window["n_rows"],
        "estimated_auc_labelled": expected_roc_auc(p),
        "realised_auc_labelled": roc_auc(y, p),
        "estimated_auc_compared": result.summary["estimated_auc"],
        "window_auc_errors": errors,
        "window_band_coverage": float(np.mean(covered)) if covered else None,
        "expected_rate": float(p.mean()),
        "realised_rate": float(y.mean()),
        "reference_rate": _reference_rate(result.performance),
        "check_seconds": seconds,
    }


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Rates and errors over the windows of one (size, scenario)."""
    n = len(records)
    kinds = Counter(k for r in records for k in r["alerts"])
    fired = Counter(f for r in records for f in r["drifting"])
    pooled = [r["estimated_auc_labelled"] - r["realised_auc_labelled"] for r in records]
    per_window = [e for r in records for e in r["window_auc_errors"]]
    coverage = [r["window_band_coverage"] for r in records if r["window_band_coverage"] is not None]
    return {
        "windows": n,
        "alarm_rate": sum(bool(r["alerts"]) for r in records) / n,
        "critical_rate": sum(r["status"] == "critical" for r in records) / n,
        "alert_rate_by_kind": {k: v / n for k, v in sorted(kinds.items())},
        "median_drifting_features": float(np.median([r["n_drifting"] for r in records])),
        "max_drifting_features": int(max(r["n_drifting"] for r in records)),
        "features_that_fire": [[name, count] for name, count in fired.most_common(12)],
        "domain_auc_median": float(np.median([r["domain_auc"] or np.nan for r in records])),
        "estimated_minus_realised_auc_pooled": {
            "mean": float(np.mean(pooled)),
            "mean_abs": float(np.mean(np.abs(pooled))),
            "max_abs": float(np.max(np.abs(pooled))),
        },
        "estimated_minus_realised_auc_per_cutoff": {
            "mean": float(np.mean(per_window)) if per_window else None,
            "mean_abs": float(np.mean(np.abs(per_window))) if per_window else None,
            "band_coverage": float(np.mean(coverage)) if coverage else None,
        },
        "expected_minus_realised_churn_rate": float(
            np.mean([r["expected_rate"] - r["realised_rate"] for r in records])
        ),
        "users_per_window_median": float(np.median([r["users"] for r in records])),
        "regime": records[0]["regime"],
        "check_seconds_median": float(np.median([r["check_seconds"] for r in records])),
    }


def full_rows(pipeline: Path, events: Path | None) -> tuple[pl.DataFrame, float, str]:
    """The full world's rows: a fresh export (seed 43) through the loader, or ``events`` (a full world's
    loaded events table, e.g. another pipeline's ``artifacts/events.parquet``) when given; seconds to
    make them once the heavy-job lock was held; where they came from."""
    if events is None:
        rows, seconds = world_rows("full", "baseline", 43, pipeline)
        return rows, seconds, "full preset, seed 43: fresh export through the loader"
    events = events.resolve()  # the subprocess runs in the pipeline's folder
    shown = events.relative_to(ROOT) if events.is_relative_to(ROOT) else events
    path = pipeline / "monitor_rows" / "full_from_events.parquet"
    path.parent.mkdir(exist_ok=True)
    seconds = 0.0
    if not path.is_file():
        env = {**os.environ, "PYTHONPATH": str(pipeline / "src")}
        with heavy_lock(LOCK):
            t0 = time.perf_counter()
            command = [sys.executable, "-c", ROWS_FROM_EVENTS, str(events), str(path)]
            subprocess.run(command, cwd=pipeline, env=env, check=True)
            seconds = time.perf_counter() - t0
    return pl.read_parquet(path), seconds, f"full preset: the loaded events table {shown}"


def full_dashboard(
    reference: dict[str, Any], model: Any, cfg: Config, pipeline: Path, events: Path | None = None
) -> dict[str, Any]:
    """A full-preset world checked; the dashboard's size and a headless-Chromium look at it."""
    from churnflow.monitoring.check import run_check
    from churnflow.monitoring.dashboard import render_dashboard
    from churnflow.monitoring.windows import scored_rows
    from churnflow.reports.browser import inspect_page

    rows, prep_s, source = full_rows(pipeline, events)
    t0 = time.perf_counter()
    current = scored_rows(rows, model, reference["offsets_days"])
    result, _ = run_check(reference, current, cfg.monitor, cfg.evaluate, cfg.seed, source=source)
    page = render_dashboard(
        result, reference, title="churnflow monitor: full preset vs the standard reference"
    )
    check_s = time.perf_counter() - t0
    out = ROOT / "reports" / "monitor_full"
    out.mkdir(parents=True, exist_ok=True)
    html_path = out / "dashboard.html"
    html_path.write_text(page)
    report = inspect_page(html_path, screenshot=out / "dashboard.png")
    return {
        "preset": "full",
        "source": source,
        "reference": "standard",
        "rows": rows.height,
        "users": int(rows["user_id"].n_unique()),
        "status": result.status,
        "n_drifting": result.summary["n_drifting"],
        "regime": result.summary["regime"],
        "prepare_seconds": prep_s,
        "check_and_render_seconds": check_s,
        "dashboard_bytes": html_path.stat().st_size,
        "dashboard_mb": html_path.stat().st_size / 1e6,
        "goal_mb": 5.0,
        "goal_met": html_path.stat().st_size <= 5e6,
        "measured_how": "len of reports/monitor_full/dashboard.html on disk (one file, everything inline)",
        "chromium": {
            "title": report.title,
            "console_errors": report.console_errors,
            "page_errors": report.page_errors,
            "external_requests": report.external_requests,
            "svg_count": report.svg_count,
            "clean": report.clean,
            "screenshot": "reports/monitor_full/dashboard.png",
        },
    }


def _ordered(summary: dict[str, Any]) -> list[tuple[str, Any]]:
    order = ["baseline", *SCENARIOS]
    return sorted(summary.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def markdown_summary(payload: dict[str, Any]) -> str:
    """The result as the Markdown docs/monitoring.md quotes (the benchmark prints the same)."""
    lines = [
        "| size | world | windows | users / window | tests | any alert | critical | drifting features "
        "(median, max) | domain AUC (median) | est. − realised AUC, pooled (mean, mean abs, max abs) "
        "| per-cutoff: mean abs, band coverage |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, block in payload["results"].items():
        for scenario, s in _ordered(block["summary"]):
            pooled = s["estimated_minus_realised_auc_pooled"]
            cut = s["estimated_minus_realised_auc_per_cutoff"]
            lines.append(
                f"| {size} | {scenario} | {s['windows']} | {s['users_per_window_median']:,.0f} "
                f"| {s['regime']} | {_pct(s['alarm_rate'])} | {_pct(s['critical_rate'])} "
                f"| {s['median_drifting_features']:.0f}, {s['max_drifting_features']} "
                f"| {s['domain_auc_median']:.3f} "
                f"| {pooled['mean']:+.3f}, {pooled['mean_abs']:.3f}, {pooled['max_abs']:.3f} "
                f"| {cut['mean_abs'] or 0:.3f}, {_pct(cut['band_coverage'] or 0)} |"
            )
    lines.append("")
    lines.append("Alerts by kind (share of windows):")
    lines.append("")
    for size, block in payload["results"].items():
        for scenario, s in _ordered(block["summary"]):
            kinds = ", ".join(f"{k} {_pct(v)}" for k, v in s["alert_rate_by_kind"].items()) or "none"
            lines.append(f"- {size} / {scenario}: {kinds}")
    lines.append("")
    lines.append(
        "Churn rate of the labelled windows at the reference's offsets, realised vs the reference world's "
        "there (mean over windows; the label-shift test compares them per window):"
    )
    lines.append("")
    for size, block in payload["results"].items():
        for scenario, records in _ordered(block["records"]):
            pairs = [(r["realised_rate"], r["reference_rate"]) for r in records if r.get("reference_rate")]
            text = (
                f"{np.mean([a for a, _ in pairs]):.3f} vs {np.mean([b for _, b in pairs]):.3f}"
                if pairs
                else "no reference rate"
            )
            lines.append(f"- {size} / {scenario}: {text}")
    lines.append("")
    lines.append("Features that fire most often (windows out of the scenario's):")
    lines.append("")
    for size, block in payload["results"].items():
        for scenario, s in _ordered(block["summary"]):
            top = ", ".join(f"`{k}` {v}" for k, v in s["features_that_fire"][:6]) or "none"
            lines.append(f"- {size} / {scenario}: {top}")
    lines.append("")
    for size, block in payload["results"].items():
        p = block["pipeline"]
        lines.append(
            f"Reference ({size}): {p['reference_rows']:,} development rows of {p['reference_users']:,} users "
            f"at {len(p['offsets_days'])} cutoff offsets; score reference {p['score_reference_rows']:,} "
            f"held-out rows, label-free AUC {p['reference_estimated_auc']:.3f}, realised "
            f"{p['reference_realised_auc']:.3f}; label window {p['labels']['horizon_days']} + "
            f"{p['labels']['inactivity_days']} days."
        )
        planned, checked = block.get("planned_windows"), block.get("checked_windows")
        if planned is not None and checked != planned:
            missing = Counter(w.split("/")[0] for w in block["not_checked"])
            lines.append(
                f"Only {checked} of the {planned} planned {size} windows were checked (the run was stopped "
                f"by `--stop-at`; not checked: {', '.join(f'{v} {k}' for k, v in missing.items())})."
            )
    online = payload.get("online_update")
    if online:
        lines.append("")
        lines.append(
            f"Online score: {online['microseconds_per_row']:.0f} µs per scored row over "
            f"{online['watched_features']} features (window {online['window']}), "
            f"{online['ratio']:.1f}x one `searchsorted` per feature."
        )
    full = payload.get("full_dashboard")
    if full:
        chrome = full["chromium"]
        lines.append("")
        lines.append(
            f"Dashboard on `full` ({full['users']:,} users, {full['rows']:,} rows checked against the "
            f"{full.get('reference', 'mini')} reference): "
            f"{full['dashboard_mb']:.2f} MB ({full['dashboard_bytes']:,} bytes on disk; "
            f"goal ≤ {full['goal_mb']:.0f} MB); "
            f"headless Chromium offline: {len(chrome['console_errors'])} console errors, "
            f"{len(chrome['external_requests'])} external requests, {chrome['svg_count']} SVG charts; "
            f"check + render {full['check_and_render_seconds']:.0f} s."
        )
    return "\n".join(lines)


def _stop_time(stop_at: str) -> float | None:
    """``HH:MM`` (UTC, today) as a Unix time; None for an empty string."""
    if not stop_at:
        return None
    hours, minutes = (int(x) for x in stop_at.split(":"))
    return float(calendar.timegm((*time.gmtime()[:3], hours, minutes, 0)))


def check_size(
    size: str, seeds: int, scenario_seeds: int, trials: int, stop: float | None
) -> tuple[dict[str, Any], tuple[Config, dict[str, Any], Any, Path]]:
    """Build (or reuse) the size's pipeline, check its worlds; the JSON block and what was loaded."""
    from churnflow.models import load_churn_model

    overrides = [*SIZES[size], f"tune.n_trials={trials}"]
    t0 = time.perf_counter()
    pipeline = prepare_pipeline(WORK / f"pipeline_{size}", overrides, "" if size in LIGHT_PRESETS else LOCK)
    pipeline_s = time.perf_counter() - t0
    cfg = load_config(pipeline / "params.yaml")
    reference = json.loads((pipeline / "artifacts" / "drift_reference.json").read_text())
    model = load_churn_model(pipeline / "artifacts" / "model")
    plan = interleaved_plan(seeds, scenario_seeds)
    records: dict[str, list[dict[str, Any]]] = {}
    skipped: list[str] = []
    prep_total = 0.0
    for scenario, seed in plan:
        if (
            stop is not None
            and time.time() >= stop
            and not world_cached(size, scenario, seed, pipeline).is_file()
        ):
            skipped.append(f"{scenario}/{seed}")
            continue
        rows, prep_s = world_rows(size, scenario, seed, pipeline)
        prep_total += prep_s
        record = {"seed": seed, **check_world(rows, reference, model, cfg)}
        records.setdefault(scenario, []).append(record)
        typer.echo(
            f"{size:>8} {scenario:>10} seed {seed}: {record['status']:>8} {record['alerts']} "
            f"drifting {record['n_drifting']:>3}  domain {record['domain_auc'] or 0:.3f}/"
            f"{record['domain_threshold'] or 0:.3f}  AUC est {record['estimated_auc_labelled']:.3f} "
            f"real {record['realised_auc_labelled']:.3f}  ({prep_s:.0f}+{record['check_seconds']:.1f} s)"
        )
    block = {
        "pipeline": {
            "overrides": overrides,
            "commit": (pipeline / "COMMIT").read_text().strip(),
            "seconds": pipeline_s,
            "reference_rows": reference["n_rows"],
            "reference_users": reference["n_users"],
            "score_reference_rows": reference["score"]["n_rows"],
            "reference_estimated_auc": reference["score"]["estimated_auc"],
            "reference_realised_auc": reference["score"]["realised_auc"],
            "offsets_days": reference["offsets_days"],
            "labels": {
                "horizon_days": cfg.labels.horizon_days,
                "inactivity_days": cfg.labels.inactivity_days,
            },
        },
        "planned_windows": len(plan),
        "checked_windows": len(plan) - len(skipped),
        "not_checked": skipped,
        "summary": {sc: summarise(recs) for sc, recs in records.items()},
        "records": records,
        "prepare_seconds": prep_total,
    }
    return block, (cfg, reference, model, pipeline)


def main(
    seeds: int = typer.Option(20, help="no-drift worlds per size (seeds 43, 44, …)"),
    scenario_seeds: int = typer.Option(3, help="worlds per drift scenario and size"),
    sizes: str = typer.Option("mini,standard", help=f"world sizes, of {sorted(SIZES)}"),
    trials: int = typer.Option(5, help="tune.n_trials of the pipeline runs"),
    full: bool = typer.Option(True, help="also check a full-preset export and measure its dashboard"),
    stop_at: str = typer.Option(
        "", help="HH:MM UTC: from then on no new world is made (cached ones are still checked)"
    ),
    out: Path = typer.Option(ROOT / "benchmarks" / "results" / "monitor.json", help="result JSON"),
    full_events: Path | None = typer.Option(
        None, help="a full world's loaded events table (load stage output) instead of a fresh full export"
    ),
    full_out: Path = typer.Option(
        ROOT / "benchmarks" / "results" / "monitor_full.json", help="full-size dashboard JSON"
    ),
) -> None:
    """Run the harness and write the result JSON (see the module docstring); sizes not run this time are
    kept from ``out`` as it was."""
    WORK.mkdir(parents=True, exist_ok=True)
    stop = _stop_time(stop_at)
    measured: dict[str, Any] = {}
    loaded: dict[str, tuple[Config, dict[str, Any], Any, Path]] = {}
    for size in [s.strip() for s in sizes.split(",") if s.strip()]:
        measured[size], loaded[size] = check_size(size, seeds, scenario_seeds, trials, stop)
    full_result = None
    if full:
        if "standard" not in loaded:
            _, loaded["standard"] = check_size("standard", 0, 0, trials, stop)
        cfg, reference, model, pipeline = loaded["standard"]
        full_result = full_dashboard(reference, model, cfg, pipeline, full_events)
        write_json(full_out, full_result)
    previous = json.loads(out.read_text()) if out.is_file() else {}  # read last: another run may have written
    results: dict[str, Any] = {**previous.get("results", {}), **measured}
    order = list(SIZES)
    results = dict(
        sorted(results.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))
    )
    first = next(iter(loaded.values()), None)
    payload = {
        "what": (
            "churnflow monitor on fresh simulated exports vs the reference of a pipeline of the same size"
        ),
        "goals": {
            "false_alarm_rate_max": 0.05,
            "detected": list(COVARIATE),
            "concept_drift_caught_by_realised": "price_rise",
        },
        "monitor_config": first[1]["settings"] if first else previous.get("monitor_config"),
        "results": results,
        "online_update": online_update_cost(first[1]) if first else previous.get("online_update"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "code": {
            "commit": _head_commit(),
            "note": "each size's pipeline is the committed code at its pipeline.commit; its exports use it",
        },
    }
    if full_result or previous.get("full_dashboard"):
        payload["full_dashboard"] = full_result or previous["full_dashboard"]
    write_json(out, payload)
    typer.echo(markdown_summary(payload))
    typer.echo(f"wrote {out}")


def online_update_cost(reference: dict[str, Any], rows: int = 20_000) -> dict[str, Any]:
    """Microseconds per scored row of :meth:`RollingDrift.update`, one row at a time (as the service calls
    it), against one ``searchsorted`` per feature as the reference cost."""
    from churnflow.monitoring.online import RollingDrift

    drift = RollingDrift.from_reference(reference)
    names = list(reference["feature_names"])
    matrix = np.random.default_rng(0).gamma(2.0, 3.0, (rows, len(names)))
    t0 = time.perf_counter()
    for i in range(rows):
        drift.update(matrix[i : i + 1], names)
    per_row = (time.perf_counter() - t0) / rows
    edges = [np.asarray(e) for e in reference["online"]["edges"]]
    t0 = time.perf_counter()
    for i in range(rows):
        for j, e in enumerate(edges):
            np.searchsorted(e, matrix[i, j])
    baseline = (time.perf_counter() - t0) / rows
    return {
        "watched_features": len(drift.feature_names),
        "window": drift.window,
        "microseconds_per_row": per_row * 1e6,
        "searchsorted_per_feature_microseconds_per_row": baseline * 1e6,
        "ratio": per_row / baseline,
    }


if __name__ == "__main__":
    typer.run(main)
