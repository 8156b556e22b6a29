"""Benchmark: the served churn model over HTTP on loopback (real ``bentoml serve``), 1,000-event bodies.

Goals (issue 10): one client p50 ≤ 15 ms and p99 ≤ 40 ms (measured with the default response, top reasons
included, and again with ``"explain": false``: TreeSHAP of a pipeline-sized model is the largest stage);
≥ 100 requests/s with the right number of workers; 0 errors over ≥ 10,000 requests at 50 clients
(p50/p99 reported); ``/predict/batch`` of 1,000 users ≤ 2 s; schemathesis with a valid key, ≥ 1,000
cases per endpoint: 0 × 5xx, 0 schema violations.
Load generator: locust headless (``FastHttpUser``, no think time) in its own process on the same machine.
Where the time goes: the service's per-stage histograms (``churnflow_stage_seconds``) read from
``/metrics`` before and after the single-client run, and the server-side request time against the
client's. Reference measured in the same run: the previous request path (``json.loads`` + the loader's
``normalize_records``) against the current one (msgspec decode + ``events_frame``) on the same bodies.

Data: simulator ``mini`` (225 users, ~1,200 events each); bodies are 1,000 consecutive events of one user.
Model: ``--model-dir`` (a train-stage model folder), else a LightGBM of the pipeline's size (600 trees,
31 leaves) fitted on features of the simulated users; registered in a temporary MLflow and packaged with
the ``package`` stage's library function into a temporary BentoML store.

Run: flock /tmp/churnflow-heavy.lock .venv/bin/python benchmarks/bench_serving.py [--schemathesis-examples N]
"""

from __future__ import annotations

import csv
import json
import os
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import typer

from churnflow.utils.io import write_json

KEY = "bench-key-0123456789abcdef"
GOALS = {
    "single_p50_ms": 15.0,
    "single_p99_ms": 40.0,
    "throughput_rps": 100.0,
    "load_requests": 10_000,
    "batch_1000_users_s": 2.0,
    "schemathesis_cases_per_endpoint": 1_000,  # endpoints with inputs (the GETs take none)
}
BIN = Path(sys.executable).parent
LOCUSTFILE = """
import glob, os, random
from locust import FastHttpUser, constant, task

BODIES = [open(p, "rb").read() for p in sorted(glob.glob(os.environ["BENCH_BODIES"] + "/*.json"))]
HEADERS = {"Authorization": "Bearer " + os.environ["BENCH_KEY"], "Content-Type": "application/json"}


class Client(FastHttpUser):
    wait_time = constant(0)
    network_timeout = 60.0
    connection_timeout = 60.0

    @task
    def predict(self):
        with self.client.post("/predict", data=random.choice(BODIES), headers=HEADERS, name="/predict",
                              catch_response=True) as reply:
            if reply.status_code != 200:
                reply.failure("status %s" % reply.status_code)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """``bentoml serve`` in a subprocess (start, wait for /readyz, stop)."""

    def __init__(self, env: dict[str, str], workdir: Path, name: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"{name}.log"
        cmd = [str(BIN / "bentoml"), "serve", "churnflow.serving.service:ChurnService"]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port)]
        self._out = self.log.open("w")
        self.proc = subprocess.Popen(cmd, env=env, cwd=workdir, stdout=self._out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise RuntimeError("server not ready after 300 s")

    def metrics(self) -> str:
        return httpx.get(f"{self.base}/metrics", headers={"X-API-Key": KEY}, timeout=30).text

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._out.close()


# ------------------------------------------------------------------------------------------ set-up


def _model(model_dir: Path | None, events_path: Path, work: Path) -> tuple[Path, str]:
    """A model folder to serve: the given one, else a pipeline-sized LightGBM fitted on simulated users."""
    if model_dir is not None:
        return model_dir, f"model folder {model_dir}"
    import lightgbm as lgb
    import numpy as np
    import polars as pl

    from churnflow.config import Config
    from churnflow.data.load import load_events
    from churnflow.features import compute_features, feature_names
    from churnflow.models.artifact import ChurnModel, save_churn_model

    cfg = Config()
    events = load_events([events_path], cfg.data).events
    last = events.group_by("user_id").agg(pl.col("ts").max())
    cutoffs = pl.concat(
        [last.select("user_id", (pl.col("ts") - pl.duration(days=d)).alias("cutoff")) for d in (1, 8, 15, 22)]
    )
    features = compute_features(events, cutoffs, cfg.features)
    names = feature_names(cfg.features)
    x = features.select(names).to_numpy().astype(np.float64)
    rng = np.random.default_rng(7)
    recency = np.nan_to_num(features.get_column("recency__days_since_last_event").to_numpy(), nan=30.0)
    y = (rng.random(len(x)) < 1 / (1 + np.exp(-(recency - 3.0)))).astype(int)
    params = {"objective": "binary", "num_leaves": 31, "learning_rate": 0.03, "min_data_in_leaf": 5}
    params.update({"seed": 7, "num_threads": 1, "verbosity": -1})
    booster = lgb.train(params, lgb.Dataset(x, label=y), num_boost_round=600)
    model = ChurnModel(
        model_name="lightgbm",
        feature_names=names,
        threshold=0.5,
        margin_fn=lambda m: booster.predict(m, raw_score=True),
        native=booster,
        meta={"benchmark": True, "data_hashes": {"events": "simulated mini seed 7"}},
    )
    out = work / "model"
    out.mkdir()
    save_churn_model(model, out)
    return out, f"LightGBM 600 trees x 31 leaves on {len(x)} simulated user rows (synthetic labels)"


def _package(model_dir: Path, work: Path) -> tuple[str, Any]:
    """Register ``model_dir`` as champion in a temporary MLflow and package it; (tag, config)."""
    import mlflow
    import numpy as np
    import pandas as pd

    from churnflow.config import Config
    from churnflow.models.artifact import load_churn_model
    from churnflow.models.tracking import log_and_register, resolve_tracking_uri
    from churnflow.serving.packaging import package_model

    cfg = Config()
    cfg.tracking.registered_model = cfg.tracking.experiment = cfg.serve.bento_model_name = "bench_churn"
    model = load_churn_model(model_dir)
    example = pd.DataFrame(np.ones((2, len(model.feature_names))), columns=model.feature_names)
    registered = log_and_register(
        model, model_dir, cfg, params={}, metrics={"test_roc_auc": 0.9}, tags={}, input_example=example
    )
    uri = resolve_tracking_uri(cfg.tracking)
    mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(
        "bench_churn", "champion", registered.version
    )
    result = package_model(cfg, model_dir, None, {"test": {"note": "benchmark model"}}, uri)
    return result.record.bento_model_tag, cfg


def _users(events_path: Path, event_type: type) -> dict[str, list[dict[str, Any]]]:
    """Logged-in users' raw events that the service accepts (typed and ranged), in file (time) order."""
    import msgspec

    decoder = msgspec.json.Decoder(event_type)
    by_user: dict[str, list[dict[str, Any]]] = {}
    with events_path.open("rb") as handle:
        for line in handle:
            try:
                decoder.decode(line)
            except msgspec.DecodeError:  # the simulator's deliberately bad lines and anonymous events
                continue
            event = json.loads(line)
            by_user.setdefault(event["userId"], []).append(event)
    return by_user


# ------------------------------------------------------------------------------------------ measurements


def _parse_reference(bodies: list[bytes], scorer: Any) -> dict[str, Any]:
    """In-process: previous path (json.loads + normalize_records) vs msgspec decode + events_frame."""
    from churnflow.data.load import normalize_records
    from churnflow.serving.scoring import events_frame

    def old(body: bytes) -> Any:
        return normalize_records(json.loads(body)["events"])

    def new(body: bytes) -> Any:
        return events_frame(scorer.schemas.predict_decoder.decode(body).events)

    out: dict[str, float] = {}
    for name, fn in (("previous_ms", old), ("current_ms", new)):
        for body in bodies[:5]:
            fn(body)
        times = []
        for body in bodies * 2:
            start = time.perf_counter()
            fn(body)
            times.append((time.perf_counter() - start) * 1000)
        out[name] = round(statistics.median(times), 3)
    out["speed_up"] = round(out["previous_ms"] / out["current_ms"], 2)
    return out


def _locust(base: str, bodies_dir: Path, users: int, run_time_s: int, prefix: Path) -> dict[str, Any]:
    """Run locust headless; the aggregated row of its stats CSV (+ load average around the run)."""
    locustfile = prefix.parent / "locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    env = {**os.environ, "BENCH_BODIES": str(bodies_dir), "BENCH_KEY": KEY}
    cmd = [str(BIN / "locust"), "-f", str(locustfile), "--headless", "-u", str(users), "-r", str(users)]
    cmd += [
        "-t",
        f"{run_time_s}s",
        "--host",
        base,
        "--only-summary",
        "--csv",
        str(prefix),
        "--stop-timeout",
        "30",
    ]
    load_before = os.getloadavg()[0]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=run_time_s + 300)
    with open(f"{prefix}_stats.csv") as handle:
        row = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
    return {
        "clients": users,
        "run_time_s": run_time_s,
        "requests": int(row["Request Count"]),
        "errors": int(row["Failure Count"]),
        "rps": round(float(row["Requests/s"]), 1),
        "p50_ms": float(row["50%"]),
        "p90_ms": float(row["90%"]),
        "p99_ms": float(row["99%"]),
        "mean_ms": round(float(row["Average Response Time"]), 2),
        "locust_exit_code": done.returncode,
        "load_avg_1m_before": round(load_before, 2),
        "load_avg_1m_after": round(os.getloadavg()[0], 2),
    }


def _histogram(text: str, name: str, label: str) -> dict[str, tuple[float, float]]:
    """{label value: (sum, count)} of a Prometheus histogram in ``text``."""
    out: dict[str, list[float]] = {}
    for kind in ("sum", "count"):
        pattern = re.compile(rf'^{name}_{kind}\{{{label}="([^"]+)"\}} ([0-9.e+-]+)$', re.M)
        for key, value in pattern.findall(text):
            out.setdefault(key, [0.0, 0.0])[0 if kind == "sum" else 1] = float(value)
    return {k: (v[0], v[1]) for k, v in out.items()}


def _time_split(before: str, after: str, client_mean_ms: float) -> dict[str, Any]:
    """Mean ms per request stage between two /metrics texts, and what the server's stages do not explain."""
    stages: dict[str, float] = {}
    b, a = (
        _histogram(before, "churnflow_stage_seconds", "stage"),
        _histogram(after, "churnflow_stage_seconds", "stage"),
    )
    for stage, (total, count) in a.items():
        d_sum, d_count = total - b.get(stage, (0, 0))[0], count - b.get(stage, (0, 0))[1]
        if d_count:
            stages[stage] = round(d_sum / d_count * 1000, 3)
    label = 'endpoint="/predict",status'
    hb = _histogram(before, "churnflow_http_request_duration_seconds", label).get("200", (0, 0))
    ha = _histogram(after, "churnflow_http_request_duration_seconds", label).get("200", (0, 0))
    server_ms = (ha[0] - hb[0]) / max(1.0, ha[1] - hb[1]) * 1000
    return {
        "stage_mean_ms": stages,
        "stages_total_ms": round(sum(stages.values()), 3),
        "server_request_mean_ms": round(server_ms, 3),
        "client_mean_ms": client_mean_ms,
        "outside_the_worker_ms": round(client_mean_ms - server_ms, 3),
    }


def _batch(base: str, body: bytes, reps: int) -> dict[str, Any]:
    times, statuses = [], []
    headers = {"X-API-Key": KEY, "Content-Type": "application/json"}
    with httpx.Client(timeout=120) as client:
        for _ in range(reps):
            start = time.perf_counter()
            reply = client.post(f"{base}/predict/batch", content=body, headers=headers)
            times.append(time.perf_counter() - start)
            statuses.append(reply.status_code)
        n_ok = reply.json().get("n_ok") if reply.status_code == 200 else None
    return {
        "users": 1000,
        "body_mb": round(len(body) / 1e6, 1),
        "seconds": [round(t, 3) for t in times],
        "median_s": round(statistics.median(times), 3),
        "statuses": sorted(set(statuses)),
        "n_ok": n_ok,
    }


OPERATIONS = ("predict", "predict_user", "predict_batch", "health", "models", "metrics", "openapi")


def _schemathesis(base: str, examples: int, work: Path) -> dict[str, Any]:
    """One schemathesis run per operation (so each operation's case count is exact)."""
    checks = "not_a_server_error,status_code_conformance,content_type_conformance,"
    checks += "response_headers_conformance,response_schema_conformance,negative_data_rejection"
    per_operation: dict[str, Any] = {}
    start = time.perf_counter()
    for op in OPERATIONS:
        report = work / f"schemathesis_{op}.json"
        cmd = [str(BIN / "schemathesis"), "run", f"{base}/docs.json", "-H", f"Authorization: Bearer {KEY}"]
        cmd += ["--include-operation-id", op, "--checks", checks, "--max-examples", str(examples)]
        cmd += ["--seed", "1", "--workers", "1", "--no-color", "--generation-database", "none"]
        cmd += ["--generation-with-security-parameters", "false"]
        cmd += ["--report", "json", "--report-json-path", str(report)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=7200)
        result = json.loads(report.read_text())
        per_operation[op] = {
            "cases": result["test_cases"]["generated"],
            "failures": result["failures"],
            "errors": result["errors"],
            "exit_code": done.returncode,
        }
        print(f"  schemathesis {op}: {per_operation[op]['cases']} cases, failures {result['failures']}")
    return {
        "max_examples": examples,
        "seconds": round(time.perf_counter() - start, 1),
        "checks": checks.split(","),
        "operations": per_operation,
        "cases_total": sum(v["cases"] for v in per_operation.values()),
        "failures_total": sum(len(v["failures"]) + len(v["errors"]) for v in per_operation.values()),
    }


# ------------------------------------------------------------------------------------------ main


def main(
    model_dir: Path | None = typer.Option(None, help="serve this train-stage model folder instead"),
    single_s: int = typer.Option(60, help="single-client run time (s)"),
    clients: int = typer.Option(50, help="concurrent clients of the load runs"),
    load_requests: int = typer.Option(10_000, help="requests the 50-client run must reach"),
    schemathesis_examples: int = typer.Option(1000, help="schemathesis --max-examples (0: skip)"),
    out: Path = typer.Option(Path("benchmarks/results/serving.json"), help="result JSON"),
) -> None:
    """Run every measurement and write the result JSON."""
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    for var, sub in {
        "BENTOML_HOME": "bentoml",
        "PROMETHEUS_MULTIPROC_DIR": "prom",
        "MPLCONFIGDIR": "mpl",
    }.items():
        (work / sub).mkdir()
        os.environ[var] = str(work / sub)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    os.chdir(work)  # MLflow writes ./mlruns
    from churnflow.serving.loading import load_served_model
    from churnflow.serving.scoring import Scorer
    from churnflow.simulate import simulate_to_dir

    t0 = time.perf_counter()
    simulate_to_dir("mini", 7, work / "data", progress=False)
    events_path = work / "data" / "events.json"
    folder, model_note = _model(model_dir, events_path, work)
    tag, _ = _package(folder, work)
    served_model = load_served_model(tag)
    scorer = Scorer(served_model.model, served_model.settings)
    users = _users(events_path, scorer.schemas.event)
    rng = random.Random(7)
    bodies_dir, plain_dir = work / "bodies", work / "bodies_no_explain"
    bodies_dir.mkdir()
    plain_dir.mkdir()
    bodies: list[bytes] = []
    long_users = [u for u, ev in users.items() if len(ev) >= 1000]
    for i in range(40):
        events = users[long_users[i % len(long_users)]]
        start = rng.randrange(0, len(events) - 999)
        body = json.dumps({"events": events[start : start + 1000]}).encode()
        (bodies_dir / f"{i:03d}.json").write_bytes(body)
        (plain_dir / f"{i:03d}.json").write_bytes(
            json.dumps({"events": events[start : start + 1000], "explain": False}).encode()
        )
        bodies.append(body)
    all_users = sorted(users)
    batch_users = []
    for i in range(1000):
        source = users[all_users[i % len(all_users)]][-100:]
        batch_users.append({"events": [{**e, "userId": f"{e['userId']}-{i}"} for e in source]})
    batch_body = json.dumps({"users": batch_users}).encode()
    setup_s = time.perf_counter() - t0
    print(f"set-up {setup_s:.0f}s: {model_note}; {len(users)} users; body {len(bodies[0]) / 1e3:.0f} KB")

    reference = _parse_reference(bodies[:10], scorer)
    print(f"parse+validate 1,000 events: was {reference['previous_ms']} ms, now {reference['current_ms']} ms")
    base_env = {**os.environ, "CHURNFLOW_BENTO_MODEL": tag, "CHURNFLOW_API_KEYS": f"{KEY}:1000000000"}
    results: dict[str, Any] = {
        "name": "serving",
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "model": model_note,
        "model_tag": tag,
        "body_kb": round(statistics.mean(len(b) for b in bodies) / 1e3, 1),
        "events_per_body": 1000,
        "goals": GOALS,
        "parse_reference": reference,
    }

    one = Served({**base_env, "CHURNFLOW_WORKERS": "1"}, work, "one_worker")
    try:
        before = one.metrics()
        single = _locust(one.base, bodies_dir, 1, single_s, work / "single")
        results["single_client"] = {
            **single,
            "time_split": _time_split(before, one.metrics(), single["mean_ms"]),
        }
        print(f"one client: p50 {single['p50_ms']} ms, p99 {single['p99_ms']} ms, {single['rps']} req/s")
        before = one.metrics()
        plain = _locust(one.base, plain_dir, 1, single_s, work / "single_plain")
        results["single_client_no_explain"] = {
            **plain,
            "time_split": _time_split(before, one.metrics(), plain["mean_ms"]),
        }
        print(f"one client, explain=false: p50 {plain['p50_ms']} ms, p99 {plain['p99_ms']} ms")
        results["batch"] = _batch(one.base, batch_body, 5)
        print(f"batch of 1,000 users: median {results['batch']['median_s']} s")
        estimate = max(20.0, single["rps"] * 0.9)
        load_s = int(load_requests / estimate * 1.15) + 10
        results["load_one_worker"] = _locust(one.base, bodies_dir, clients, load_s, work / "load1")
        print(f"{clients} clients, 1 worker: {results['load_one_worker']}")
        if schemathesis_examples:
            results["schemathesis"] = _schemathesis(one.base, schemathesis_examples, work)
            print(f"schemathesis: {results['schemathesis']['cases_total']} cases")
    finally:
        one.stop()

    redis_binary = shutil.which("redis-server")
    if redis_binary is None:
        results["load_two_workers"] = {
            "skipped": "redis-server is not installed (two workers need shared limits)"
        }
    else:
        port = _free_port()
        redis = subprocess.Popen(
            [redis_binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        time.sleep(1)
        env = {
            **base_env,
            "CHURNFLOW_WORKERS": "2",
            "CHURNFLOW_RATE_LIMIT_STORAGE": f"redis://127.0.0.1:{port}",
        }
        two = Served(env, work, "two_workers")
        try:
            load_s = int(load_requests / max(20.0, results["load_one_worker"]["rps"]) * 1.15) + 10
            results["load_two_workers"] = _locust(two.base, bodies_dir, clients, load_s, work / "load2")
            print(f"{clients} clients, 2 workers + Redis: {results['load_two_workers']}")
            load_s = int(load_requests / max(20.0, results["load_two_workers"]["rps"] * 1.5) * 1.15) + 10
            results["load_two_workers_no_explain"] = _locust(
                two.base, plain_dir, clients, load_s, work / "load3"
            )
            print(f"explain=false, 2 workers: {results['load_two_workers_no_explain']}")
        finally:
            two.stop()
            redis.terminate()

    runs = {k: results[k] for k in ("load_one_worker", "load_two_workers") if "rps" in results.get(k, {})}
    plain_runs = {k: results[k] for k in ("load_two_workers_no_explain",) if "rps" in results.get(k, {})}
    best = max(runs, key=lambda k: runs[k]["rps"])
    results["best_workers"] = {"run": best, "rps": runs[best]["rps"]}
    sch = results.get("schemathesis", {})
    with_inputs = (
        [sch["operations"][op]["cases"] for op in ("predict", "predict_user", "predict_batch")] if sch else []
    )
    results["goals_met"] = {
        "single_p50": results["single_client"]["p50_ms"] <= GOALS["single_p50_ms"],
        "single_p99": results["single_client"]["p99_ms"] <= GOALS["single_p99_ms"],
        "single_p50_no_explain": results["single_client_no_explain"]["p50_ms"] <= GOALS["single_p50_ms"],
        "single_p99_no_explain": results["single_client_no_explain"]["p99_ms"] <= GOALS["single_p99_ms"],
        "throughput": runs[best]["rps"] >= GOALS["throughput_rps"],
        "throughput_no_explain": any(r["rps"] >= GOALS["throughput_rps"] for r in plain_runs.values()),
        "load_zero_errors_10k": all(r["errors"] == 0 for r in runs.values())
        and min(r["requests"] for r in runs.values()) >= GOALS["load_requests"],
        "batch_1000_users": results["batch"]["median_s"] <= GOALS["batch_1000_users_s"]
        and results["batch"]["statuses"] == [200],
        "schemathesis": bool(sch)
        and sch["failures_total"] == 0
        and min(with_inputs, default=0) >= GOALS["schemathesis_cases_per_endpoint"],
    }
    results["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    os.chdir(Path(__file__).resolve().parents[1])
    write_json(out, results)
    print(json.dumps(results["goals_met"], indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    typer.run(main)
