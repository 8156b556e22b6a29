"""The HTML drift report and the notebook-runner helpers (fast; the real papermill run is in
test_report_notebooks.py)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from churnflow.config import MonitorConfig
from churnflow.monitoring.drift import build_drift_reference, check_drift
from churnflow.monitoring.notebooks import (
    convert_notebook,
    discover_notebooks,
    flatten,
    home_env_defaults,
    missing_note,
    read_json_or_none,
    strip_run_metadata,
)
from churnflow.monitoring.report import render_drift_html

CFG = MonitorConfig()


def _report(shift: float):
    rng = np.random.default_rng(0)
    ref_frame = pl.DataFrame({"a": rng.normal(size=2000), "b": rng.poisson(3, 2000)})
    new_frame = pl.DataFrame({"a": rng.normal(shift, size=500), "b": rng.poisson(3, 500)})
    ref = build_drift_reference(ref_frame, rng.uniform(size=2000), CFG, ["a", "b"])
    return check_drift(ref, new_frame, rng.uniform(size=500) ** (1 + shift), CFG)


def test_html_shows_status_table_and_two_png_figures() -> None:
    page = render_drift_html(_report(shift=1.0), title="t")
    assert page.startswith("<!DOCTYPE html>")
    assert "alert" in page and "<td>a</td>" in page and "churn_probability" in page
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(images) == 2
    assert all(base64.b64decode(img).startswith(b"\x89PNG") for img in images)


def test_html_is_deterministic() -> None:
    assert render_drift_html(_report(shift=0.0)) == render_drift_html(_report(shift=0.0))


def test_html_escapes_names() -> None:
    rng = np.random.default_rng(1)
    frame = pl.DataFrame({"<b>x</b>": rng.normal(size=100)})
    ref = build_drift_reference(frame, np.full(100, 0.5), CFG, ["<b>x</b>"])
    page = render_drift_html(check_drift(ref, frame, np.full(100, 0.5), CFG))
    assert "<td>&lt;b&gt;x&lt;/b&gt;</td>" in page


def test_every_project_notebook_converts_with_a_parameters_cell(repo_root: Path) -> None:
    sources = discover_notebooks(repo_root / "notebooks")
    names = [p.stem for p in sources]
    for expected in (
        "01_data_quality",
        "02_churn_definition",
        "03_features",
        "04_model_evaluation",
        "05_drift",
    ):
        assert expected in names
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for source in sources:
        nb = convert_notebook(source, kernelspec)
        assert nb.metadata["kernelspec"]["name"] == "python3"
        params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1 and "reports_dir" in params[0].source and "artifacts_dir" in params[0].source


def test_notebook_without_parameters_cell_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "01_bad.py"
    source.write_text("# %%\nx = 1\n")
    with pytest.raises(ValueError, match="parameters"):
        convert_notebook(source, {"name": "python3"})


def test_discover_ignores_other_files_and_fails_when_empty(tmp_path: Path) -> None:
    (tmp_path / "helper.py").write_text("")
    with pytest.raises(FileNotFoundError, match=r"no NN_name\.py"):
        discover_notebooks(tmp_path)
    (tmp_path / "02_b.py").write_text("")
    (tmp_path / "01_a.py").write_text("")
    assert [p.name for p in discover_notebooks(tmp_path)] == ["01_a.py", "02_b.py"]


def test_small_notebook_helpers(tmp_path: Path) -> None:
    assert read_json_or_none(tmp_path / "absent.json") is None
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match=r"bad\.json"):
        read_json_or_none(tmp_path / "bad.json")
    assert flatten({"test": {"roc_auc": 0.9, "ci": [0.8, 1.0]}, "n": 3}) == {
        "test.roc_auc": 0.9,
        "test.ci": [0.8, 1.0],
        "n": 3,
    }
    assert "`evaluate`" in missing_note("reports/metrics.json", "evaluate")
    defaults = home_env_defaults(tmp_path, {"IPYTHONDIR": "/set"})
    assert "IPYTHONDIR" not in defaults and defaults["MPLCONFIGDIR"].startswith(str(tmp_path))


def test_strip_run_metadata_makes_ids_and_metadata_stable() -> None:
    import nbformat

    def executed() -> nbformat.NotebookNode:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_markdown_cell("# t")]
        nb.metadata["papermill"] = {"start_time": "now", "input_path": "/tmp/x", "parameters": {"a": 1}}
        nb.cells[0].metadata["papermill"] = {"duration": 0.1}
        nb.cells[0].metadata["execution"] = {"iopub.status.busy": "now"}
        return nb

    a, b = strip_run_metadata(executed()), strip_run_metadata(executed())
    assert nbformat.writes(a) == nbformat.writes(b)
    assert a.metadata["papermill"] == {"parameters": {"a": 1}}
    assert [c["id"] for c in a.cells] == ["cell-000", "cell-001"]
    assert "execution" not in a.cells[0].metadata
