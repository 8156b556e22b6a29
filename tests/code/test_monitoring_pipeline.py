"""drift_baseline stage and `churnflow monitor` for real: loader, feature engine, a LightGBM model folder."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from churnflow.config import Config, DataConfig
from churnflow.data.load import load_events
from churnflow.monitoring.drift import SCORE_NAME

pytestmark = pytest.mark.slow

features_mod = pytest.importorskip("churnflow.features")
testing = pytest.importorskip("churnflow.serving.testing")


def _write_events(path: Path, n_users: int, n_events: int, seed: int) -> None:
    """Raw Sparkify JSON lines for ``n_users`` logged-in users (``n_events`` each, 30 days)."""
    with path.open("w") as handle:
        for u in range(n_users):
            for event in testing.synthetic_user_events(f"{u + 1}", seed, n_events=n_events, days=30):
                handle.write(json.dumps(event) + "\n")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """events.json (training period), features.parquet at 3 weekly cutoffs and a fitted model folder."""
    root = tmp_path_factory.mktemp("monitor")
    _write_events(root / "events.json", n_users=60, n_events=80, seed=1)
    events = load_events([root / "events.json"], DataConfig()).events
    cfg = Config().features
    first = events["ts"].min()
    cutoffs = pl.DataFrame(
        {
            "user_id": events["user_id"].unique().sort().to_list() * 3,
            "cutoff": [first + timedelta(days=d) for d in (14, 21, 28) for _ in range(60)],
        }
    ).cast({"cutoff": pl.Datetime("ms", "UTC")})
    features = features_mod.compute_features(events, cutoffs, cfg)
    features.write_parquet(root / "features.parquet")
    testing.train_tiny_model(features_mod.feature_names(cfg), root / "model")
    return root


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _baseline(repo_root: Path, project: Path, out: Path) -> dict:
    _run(
        [
            sys.executable,
            str(repo_root / "stages" / "drift_baseline.py"),
            *("--features", str(project / "features.parquet"), "--model-dir", str(project / "model")),
            *("--reference", str(out), "--params", str(repo_root / "params.yaml")),
        ],
        cwd=project,
    )
    return json.loads(out.read_text())


def test_baseline_stage_writes_a_deterministic_reference(repo_root: Path, project: Path) -> None:
    first = _baseline(repo_root, project, project / "ref1.json")
    _baseline(repo_root, project, project / "ref2.json")
    assert (project / "ref1.json").read_bytes() == (project / "ref2.json").read_bytes()
    n_features = len(features_mod.feature_names(Config().features))
    assert len(first["feature_names"]) == min(n_features, Config().monitor.n_features)
    assert first["meta"]["reference_split"] == "train"
    assert len(first["meta"]["test_cutoffs"]) == 1  # the latest cutoff: the model's test cutoff
    assert first["n_rows"] == 120  # features: 2 of 3 cutoffs × 60 users
    assert first["score"]["n"] == 60  # scores: out-of-sample, the test cutoff's 60 users
    assert first["meta"]["score_cutoffs"] == first["meta"]["test_cutoffs"]
    assert first["meta"]["feature_ranking"].startswith("model importance")


def test_monitor_cli_writes_drift_json_and_html(repo_root: Path, project: Path) -> None:
    reference = project / "ref_cli.json"
    _baseline(repo_root, project, reference)
    churnflow = str(Path(sys.executable).parent / "churnflow")
    results = {}
    for name, n_events in (("same", 80), ("shifted", 400)):
        events = project / f"new_{name}.json"
        _write_events(events, n_users=40, n_events=n_events, seed=2)
        out = project / f"monitor_{name}"
        done = _run(
            [
                *(churnflow, "monitor", "--events", str(events), "--out", str(out)),
                *("--reference", str(reference), "--model-dir", str(project / "model")),
                *("--params", str(repo_root / "params.yaml")),
            ],
            cwd=project,
        )
        assert SCORE_NAME in done.stdout
        payload = json.loads((out / "drift.json").read_text())
        assert payload["n_rows"] == 40
        assert payload["status"] in {"ok", "warn", "alert"}
        assert set(payload["features"]) == set(json.loads(reference.read_text())["feature_names"])
        assert "<img" in (out / "drift.html").read_text()
        results[name] = payload
    top = {name: max(f["psi"] for f in p["features"].values()) for name, p in results.items()}
    assert top["shifted"] > top["same"]
    assert results["shifted"]["status"] == "alert"


def test_monitor_cli_names_a_missing_reference(repo_root: Path, project: Path) -> None:
    churnflow = str(Path(sys.executable).parent / "churnflow")
    done = subprocess.run(
        [churnflow, "monitor", "--events", str(project / "events.json"), "--out", str(project / "x")],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "--reference" in done.stderr or "--reference" in done.stdout
