"""The report stage for real: jupytext + papermill + nbconvert on a tiny fake reports/artifacts folder."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from churnflow.config import MonitorConfig
from churnflow.monitoring.drift import build_drift_reference

pytestmark = pytest.mark.slow

NOTEBOOKS = ["01_data_quality", "02_churn_definition", "03_features", "04_model_evaluation", "05_drift"]


def _fake_project(root: Path) -> None:
    """reports/ and artifacts/ shaped like the contracts in docs/contracts.md, made of synthetic data."""
    reports, artifacts = root / "reports", root / "artifacts"
    (reports / "figures").mkdir(parents=True)
    artifacts.mkdir()
    rng = np.random.default_rng(0)
    quality = {
        "lines_read": 1003,
        "loaded": 1000,
        "quarantined": 2,
        "duplicates": 1,
        "unknown_pages": {},
        "files": {"events.json": {"lines_read": 1003, "loaded": 1000}},
        "reasons": {"malformed_json": 1, "missing_ts": 1},
    }
    (reports / "quality.json").write_text(json.dumps(quality))
    (artifacts / "quarantine.jsonl").write_text(
        '{"source_file": "events.json", "source_line": 7, "reason": "malformed_json", "raw": "{"}\n'
    )
    (reports / "churn_definition.json").write_text(json.dumps({"horizon_days": 14, "churn_rate": 0.21}))
    cutoffs = [datetime(2024, 10, 1, tzinfo=UTC) + timedelta(days=7 * i) for i in range(3)]
    n = 300
    keys = pl.DataFrame(
        {
            "user_id": [f"u{i % 100}" for i in range(n)],
            "cutoff": pl.Series([cutoffs[i // 100] for i in range(n)]).cast(pl.Datetime("ms", "UTC")),
        }
    )
    label = (rng.random(n) < 0.2).astype(np.int8)
    keys.with_columns(
        label=pl.Series(label),
        churn_kind=pl.Series(["cancel" if v else None for v in label], dtype=pl.String),
        churn_ts=pl.lit(None, dtype=pl.Datetime("ms", "UTC")),
        horizon_days=pl.lit(14),
    ).write_parquet(artifacts / "labels.parquet")
    features = keys.with_columns(
        engagement__songs_28d=pl.Series(rng.poisson(50, n) - 30 * label),
        engagement__thumbs_down_28d=pl.Series(rng.poisson(1 + 2 * label)),
    )
    features.write_parquet(artifacts / "features.parquet")
    (reports / "feature_catalog.md").write_text(
        "| name | description |\n|---|---|\n| songs | songs played |\n"
    )
    metrics = {"test": {"roc_auc": 0.8765, "roc_auc_ci": [0.8, 0.9]}, "n_train": 200, "n_test": 100}
    (reports / "metrics.json").write_text(json.dumps(metrics))
    fig = Figure(figsize=(2, 2))
    FigureCanvasAgg(fig)
    fig.add_subplot().plot([0, 1], [0, 1])
    fig.savefig(reports / "figures" / "roc.png")
    (reports / "evaluation.html").write_text("<html></html>")
    names = ["engagement__songs_28d", "engagement__thumbs_down_28d"]
    reference = build_drift_reference(features, rng.uniform(size=n), MonitorConfig(), names)
    (artifacts / "drift_reference.json").write_text(json.dumps(reference))


def _run_stage(repo_root: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        str(repo_root / "stages" / "report.py"),
        *("--notebooks", str(repo_root / "notebooks")),
        *("--reports", "reports", "--artifacts", "artifacts", "--out", "reports/notebooks"),
    ]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _outputs(nb_path: Path) -> tuple[str, int]:
    """All text outputs of a notebook joined, and the number of PNG outputs."""
    nb = json.loads(nb_path.read_text())
    texts, images = [], 0
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", out
            data = out.get("data", {})
            images += "image/png" in data
            texts.append("".join(out.get("text", "")))
            texts.extend("".join(v) for k, v in data.items() if k.startswith("text/"))
    return "\n".join(texts), images


def test_report_stage_executes_every_notebook_with_inputs(repo_root: Path, tmp_path: Path) -> None:
    _fake_project(tmp_path)
    done = _run_stage(repo_root, tmp_path)
    assert "Executing" in done.stderr  # papermill's progress bar
    out = tmp_path / "reports" / "notebooks"
    for name in NOTEBOOKS:
        assert (out / f"{name}.ipynb").is_file() and (out / f"{name}.html").is_file(), name
        text, _ = _outputs(out / f"{name}.ipynb")
        assert "Not available yet" not in text, (name, text[:2000])
        html = (out / f"{name}.html").read_text()
        assert "In&nbsp;[" not in html  # no input prompts
    assert "malformed_json" in _outputs(out / "01_data_quality.ipynb")[0]
    assert "churn_rate" in _outputs(out / "02_churn_definition.ipynb")[0]
    assert _outputs(out / "03_features.ipynb")[1] >= 2  # one histogram per shown feature
    assert "0.8765" in _outputs(out / "04_model_evaluation.ipynb")[0]
    assert _outputs(out / "04_model_evaluation.ipynb")[1] >= 1  # the ROC figure
    assert _outputs(out / "05_drift.ipynb")[1] >= 3  # score + two features
    executed = json.loads((out / "05_drift.ipynb").read_text())
    assert executed["metadata"]["papermill"] == {
        "parameters": {"artifacts_dir": "artifacts", "reports_dir": "reports"}
    }
    assert all(cell["id"].startswith("cell-") for cell in executed["cells"])  # no random ids


def test_report_stage_renders_notes_when_inputs_are_absent(repo_root: Path, tmp_path: Path) -> None:
    _run_stage(repo_root, tmp_path)
    out = tmp_path / "reports" / "notebooks"
    for name in NOTEBOOKS:
        text, _ = _outputs(out / f"{name}.ipynb")
        assert "Not available yet" in text, name
        assert (out / f"{name}.html").is_file()
