"""docs/monitoring.md quotes the committed monitor benchmark JSON, figure for figure."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULT = ROOT / "benchmarks" / "results" / "monitor.json"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """benchmarks/bench_monitor.py, imported once."""
    spec = importlib.util.spec_from_file_location("bench_monitor", ROOT / "benchmarks" / "bench_monitor.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _quoted() -> str:
    docs = (ROOT / "docs" / "monitoring.md").read_text()
    block = re.search(r"<!-- monitor\.json -->\n(.*?)\n<!-- /monitor\.json -->", docs, flags=re.S)
    assert block is not None, "docs/monitoring.md quotes no monitor.json block"
    return block.group(1)


def test_docs_quote_the_committed_benchmark_result(bench: ModuleType) -> None:
    assert RESULT.is_file(), "benchmarks/results/monitor.json is missing: run benchmarks/bench_monitor.py"
    assert _quoted() == bench.markdown_summary(json.loads(RESULT.read_text()))


def test_the_summary_changes_when_a_figure_changes(bench: ModuleType) -> None:
    """The check above can fail: the headline rates are in the rendered text."""
    result = json.loads(RESULT.read_text())
    size = next(iter(result["results"]))
    changed = json.loads(json.dumps(result))
    changed["results"][size]["summary"]["baseline"]["alarm_rate"] += 0.05
    assert bench.markdown_summary(changed) != bench.markdown_summary(result)
