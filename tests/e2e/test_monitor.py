"""The monitor on the real pipeline's outputs: the drift_baseline stage's reference and self-check, and
`churnflow monitor` on fresh exports — from files and, by default, from the served model's BentoML entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from churnflow.monitoring.reference import REFERENCE_VERSION
from tests.e2e.conftest import PipelineRepo

pytestmark = pytest.mark.slow


def _export(repo: PipelineRepo, scenario: str, seed: int, preset: str = "tiny") -> Path:
    out = repo.root.parent / f"export_{preset}_{scenario}_{seed}"
    if not out.exists():
        repo.run(
            "churnflow",
            "simulate",
            "--preset",
            preset,
            "--seed",
            str(seed),
            "--scenario",
            scenario,
            "--out",
            str(out),
        )
    return out / "events.json"


def _monitor(repo: PipelineRepo, events: Path, out: Path, *files: str, check: bool = True):
    return repo.run("churnflow", "monitor", "--events", str(events), "--out", str(out), *files, check=check)


def test_baseline_stage_writes_reference_and_self_check(tiny_pipeline: PipelineRepo) -> None:
    ref = json.loads((tiny_pipeline.root / "artifacts/drift_reference.json").read_text())
    meta = json.loads((tiny_pipeline.root / "artifacts/model/model_meta.json").read_text())
    assert ref["version"] == REFERENCE_VERSION
    assert ref["feature_names"] == meta["feature_names"]  # every feature the model reads is watched
    assert ref["n_rows"] == ref["meta"]["split"]["rows"]["development"]  # all training rows
    assert ref["score"]["rows"] in {"held_out_users", "test"} and ref["online"]["features"]
    check = json.loads((tiny_pipeline.root / "reports/drift/drift.json").read_text())
    if check["status"] == "no self-check":  # tiny holds too few held-out users to halve them
        assert check["reason"]
    else:
        assert check["window"]["source"].startswith("self-check")
        assert (tiny_pipeline.root / "reports/drift/dashboard.html").stat().st_size > 10_000


def test_monitor_ranks_what_app_errors_changes_first(tiny_pipeline: PipelineRepo) -> None:
    """Direction: app_errors (sessions a third shorter, five times the errors) leads the feature ranking. On
    tiny's ~40 matched users it need not reach significance (detection power is bench_monitor's job)."""
    events = _export(tiny_pipeline, "app_errors", 8)
    out = tiny_pipeline.root.parent / "monitor_app_errors"
    files = ("--reference", "artifacts/drift_reference.json", "--model-dir", "artifacts/model")
    done = _monitor(tiny_pipeline, events, out, *files)
    payload = json.loads((out / "drift.json").read_text())
    assert payload["reference"].startswith("files")
    assert f"status {payload['status']}" in done.stdout
    reference = json.loads((tiny_pipeline.root / "artifacts/drift_reference.json").read_text())
    assert len(payload["features"]) == len(reference["feature_names"])  # every feature watched
    most_significant = [f["name"] for f in payload["features"][:10]]
    assert any(n.startswith(("session__", "friction__errors")) for n in most_significant), most_significant


def test_monitor_alerts_write_json_dashboard_and_state_with_cooldown(tiny_pipeline: PipelineRepo) -> None:
    """A world that truly differs: mini's users churn unlike tiny's (tiny's churn boost), so once labels
    arrive the realised AUC or churn rate leaves the band the calibrated scores predict: critical, then
    suppressed within the cooldown."""
    events = _export(tiny_pipeline, "baseline", 8, preset="mini")
    out = tiny_pipeline.root.parent / "monitor_files"
    files = ("--reference", "artifacts/drift_reference.json", "--model-dir", "artifacts/model")
    done = _monitor(tiny_pipeline, events, out, *files)
    payload = json.loads((out / "drift.json").read_text())
    assert payload["status"] == "critical" and "status critical" in done.stdout, payload["alerts"]
    kinds = {a["kind"] for a in payload["alerts"]}
    # which performance check fires depends on the served model (other tests may retrain the shared copy)
    assert kinds & {"performance_estimate", "performance_realised", "churn_rate"}, kinds
    html = (out / "dashboard.html").read_text()
    assert "<script" not in html and "CRITICAL" in html
    state = json.loads((out / "alert_state.json").read_text())
    assert set(state) == kinds
    # the same export again within the cooldown: listed, suppressed, status ok
    _monitor(tiny_pipeline, events, out, *files)
    again = json.loads((out / "drift.json").read_text())
    assert again["alerts"] and all(a["suppressed"] for a in again["alerts"]) and again["status"] == "ok"


def test_monitor_reads_the_served_models_reference_by_default(tiny_pipeline: PipelineRepo) -> None:
    events = _export(tiny_pipeline, "baseline", 9)
    out = tiny_pipeline.root.parent / "monitor_served"
    _monitor(tiny_pipeline, events, out)
    payload = json.loads((out / "drift.json").read_text())
    assert payload["reference"].startswith("served model churn:")
    assert payload["window"]["compared_rows"] > 0 and payload["performance"]


def test_monitor_names_bad_input(tiny_pipeline: PipelineRepo) -> None:
    out = tiny_pipeline.root.parent / "monitor_bad"
    done = _monitor(tiny_pipeline, tiny_pipeline.root / "missing.json", out, check=False)
    assert done.returncode != 0 and "--events" in done.stdout + done.stderr
    done = _monitor(
        tiny_pipeline,
        _export(tiny_pipeline, "baseline", 9),
        out,
        "--reference",
        "artifacts/drift_reference.json",
        check=False,
    )
    assert done.returncode != 0 and "--model-dir" in done.stdout + done.stderr
