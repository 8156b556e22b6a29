"""The report stage for real: jupytext + papermill + nbconvert on a small project made of the simulator's
`tiny` world (events, labels, features), a drift reference and check, and a metrics.json in the
known-customers / new-users / oracle layout. Checks what the issue asks of the pages: offline HTML with
real titles, the quality report and volume/page mix, Kaplan–Meier and the inactivity sensitivity, key
figures equal to metrics.json, the latest drift check — and, with Chromium installed, no console error
with the network off."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from churnflow.config import Config
from churnflow.data.load import load_events
from churnflow.features import compute_features
from churnflow.labels import build_labels
from churnflow.monitoring.check import run_check
from churnflow.monitoring.reference import build_reference
from churnflow.monitoring.windows import export_day0, scored_rows
from churnflow.reports.browser import chromium_path, inspect_page
from churnflow.reports.notebooks import key_figures
from churnflow.simulate import simulate_to_dir

pytestmark = pytest.mark.slow

NOTEBOOKS = ["01_data_quality", "02_churn_definition", "03_features", "04_model_evaluation", "05_drift"]
METRICS = {
    "test": {
        "known_customers": {"roc_auc": 0.81234, "roc_auc_ci": [0.78, 0.84], "pr_auc": 0.4321, "ece": 0.0213},
        "new_users": {"roc_auc": 0.7654, "n_rows": 420},
        "threshold": 0.3352,
    },
    "oracle": {"known_customers": {"roc_auc": 0.8876, "model_over_oracle": 0.9152}},
    "business": {"net_value_top_k": 5123.5, "roi_top_k": 0.8},
}


class _Scores:
    """A fixed score for the fake project's drift check (fewer songs in 7 days → more churn)."""

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        z = -0.01 * frame["activity__songs_7d"].fill_null(0).to_numpy() - 1.0
        return 1.0 / (1.0 + np.exp(-z))


def _fake_project(root: Path) -> None:
    reports, artifacts = root / "reports", root / "artifacts"
    (reports / "figures").mkdir(parents=True)
    artifacts.mkdir()
    cfg = Config()
    simulate_to_dir("tiny", 7, root / "raw", progress=False)
    loaded = load_events([root / "raw"], cfg.data)
    loaded.events.write_parquet(artifacts / "events.parquet")
    (reports / "quality.json").write_text(json.dumps(loaded.quality))
    (artifacts / "quarantine.jsonl").write_text("")
    result = build_labels(loaded.events, cfg.labels)
    result.labels.write_parquet(artifacts / "labels.parquet")
    (reports / "churn_definition.json").write_text(json.dumps(result.summary, default=str))
    features = compute_features(loaded.events, result.labels.select("user_id", "cutoff"), cfg.features)
    features.write_parquet(artifacts / "features.parquet")
    (reports / "feature_catalog.md").write_text(
        "| name | description |\n|---|---|\n| songs | songs played |\n"
    )
    (reports / "metrics.json").write_text(json.dumps(METRICS))
    fig = Figure(figsize=(2, 2))
    FigureCanvasAgg(fig)
    fig.add_subplot().plot([0, 1], [0, 1])
    fig.savefig(reports / "figures" / "roc.png")
    (reports / "evaluation.html").write_text("<html></html>")
    # a reference of the early cutoffs, a check of one half of the users
    table = features.join(result.labels.select("user_id", "cutoff", "label"), on=["user_id", "cutoff"])
    cutoffs = sorted(table["cutoff"].unique().to_list())
    half = table["user_id"].hash(seed=1).to_numpy() % 2 == 0
    early = table["cutoff"].is_in(cutoffs[: max(2, len(cutoffs) // 2)]).to_numpy()
    dev, held = table.filter(pl.Series(early & ~half)), table.filter(pl.Series(early & half))
    names = [c for c in features.columns if c not in ("user_id", "cutoff")]
    day0 = export_day0(loaded.events)
    small = cfg.monitor.__class__(
        calibration_splits=10, domain_splits=2, domain_rows=300, performance_draws=50
    )
    model = _Scores()
    reference = build_reference(
        dev, names, day0, held, model.predict_proba(held), small, cfg.evaluate, seed=3
    )
    (artifacts / "drift_reference.json").write_text(json.dumps(reference))
    rows = table.filter(pl.Series(half)).with_columns(
        offset=(pl.col("cutoff") - pl.lit(day0, dtype=pl.Datetime("ms", "UTC")))
        .dt.total_days()
        .cast(pl.Int64)
    )
    check, _ = run_check(
        reference, scored_rows(rows, model, reference["offsets_days"]), small, cfg.evaluate, 1
    )
    (reports / "drift").mkdir()
    (reports / "drift" / "drift.json").write_text(json.dumps(check.to_dict()))


def _run_stage(repo_root: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        str(repo_root / "stages" / "report.py"),
        *("--notebooks", str(repo_root / "notebooks")),
        *("--reports", "reports", "--artifacts", "artifacts", "--out", "reports/notebooks"),
    ]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _outputs(nb_path: Path) -> tuple[str, int]:
    """All text outputs of a notebook joined, and the number of PNG/SVG outputs."""
    nb = json.loads(nb_path.read_text())
    texts, images = [], 0
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", out
            data = out.get("data", {})
            images += "image/png" in data or "image/svg+xml" in data
            texts.append("".join(out.get("text", "")))
            texts.extend("".join(v) for k, v in data.items() if k.startswith("text/"))
    return "\n".join(texts), images


REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    _fake_project(root)
    done = _run_stage(REPO_ROOT, root)
    # progress off a terminal: one line per executed notebook (no papermill bar redraws in DVC logs)
    assert done.stdout.count(" executed") == len(NOTEBOOKS) and "Executing:" not in done.stderr
    return root / "reports" / "notebooks"


def test_every_notebook_runs_offline_with_a_real_title(executed: Path) -> None:
    for name in NOTEBOOKS:
        text, _ = _outputs(executed / f"{name}.ipynb")
        assert "Not available yet" not in text, (name, text[:2000])
        html = (executed / f"{name}.html").read_text()
        assert "In&nbsp;[" not in html  # no input prompts
        assert not re.findall(r'<script[^>]+src="https?://', html), name
        assert "require.js" not in html and "MathJax.js" not in html.replace("mathjax", "")
        title = re.search(r"<title>(.*?)</title>", html).group(1)  # type: ignore[union-attr]
        assert title.startswith("churnflow · 0") and title != "Notebook", title
    executed_nb = json.loads((executed / "05_drift.ipynb").read_text())
    assert executed_nb["metadata"]["papermill"]["parameters"]["reports_dir"] == "reports"
    assert all(cell["id"].startswith("cell-") for cell in executed_nb["cells"])  # no random ids


def test_quality_volume_and_page_mix(executed: Path) -> None:
    text, images = _outputs(executed / "01_data_quality.ipynb")
    assert "No line was quarantined" in text and "lines read" in text
    assert images >= 2  # volume by day, page mix
    assert "NextSong" in text


def test_kaplan_meier_and_inactivity_sensitivity(executed: Path) -> None:
    text, images = _outputs(executed / "02_churn_definition.ipynb")
    assert "inactivity_days" in text and "label_window_days" in text
    assert images >= 3  # churn rate per cutoff, KM by cohort and level, sensitivity
    assert "churned" in text


def test_key_figures_in_the_html_equal_metrics_json(executed: Path) -> None:
    html = (executed / "04_model_evaluation.html").read_text()
    figures = key_figures(METRICS)
    assert "test.known_customers.roc_auc" in figures and "oracle.known_customers.model_over_oracle" in figures
    for path, value in figures.items():
        row = re.search(rf'data-key="{re.escape(path)}"><td>[^<]*</td><td class="value">([^<]+)</td>', html)
        assert row is not None, path
        assert float(row.group(1)) == pytest.approx(value, abs=5e-5), path


def test_drift_notebook_shows_the_latest_check(executed: Path) -> None:
    text, images = _outputs(executed / "05_drift.ipynb")
    assert "Status:" in text and "features drift" in text and "training rows" in text
    assert images >= 3  # families, features, AUC over windows


@pytest.mark.skipif(
    chromium_path() is None, reason="Chromium is not installed (make test installs Debian's chromium as root)"
)
def test_notebook_pages_have_no_console_error_offline(executed: Path) -> None:
    pytest.importorskip("playwright.sync_api", reason="playwright (dev dependency) is not installed")
    for name in NOTEBOOKS:
        report = inspect_page(executed / f"{name}.html")
        assert report.clean, (name, report)
        assert report.title.startswith("churnflow · 0")
