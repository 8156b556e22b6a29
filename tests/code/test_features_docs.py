"""docs/features.md quotes the committed feature benchmark JSON, figure for figure."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """benchmarks/bench_features.py, imported once."""
    spec = importlib.util.spec_from_file_location("bench_features", ROOT / "benchmarks" / "bench_features.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_quote_the_committed_benchmark_results(bench: ModuleType) -> None:
    docs = (ROOT / "docs" / "features.md").read_text()
    blocks = re.findall(r"<!-- (features\w*)\.json -->\n(.*?)\n<!-- /\1\.json -->", docs, flags=re.S)
    assert blocks, "docs/features.md quotes no benchmark result block"
    for name, quoted in blocks:
        result = json.loads((ROOT / "benchmarks" / "results" / f"{name}.json").read_text())
        assert quoted == bench.markdown_summary(result), (
            f"docs/features.md block {name} differs from {name}.json"
        )


@pytest.mark.parametrize("field", ["churnflow", "pandas_reference", "online"])
def test_the_summary_changes_when_a_figure_changes(bench: ModuleType, field: str) -> None:
    """The check above can fail: every timed part's headline figure is in the rendered text."""
    result = json.loads((ROOT / "benchmarks" / "results" / "features_full.json").read_text())
    key = "p50_ms" if field == "online" else "seconds"
    changed = {**result, field: {**result[field], key: result[field][key] + 1.0}}
    assert bench.markdown_summary(changed) != bench.markdown_summary(result)


def test_docs_quote_the_registry_size() -> None:
    from churnflow.config import FeaturesConfig
    from churnflow.features import feature_registry

    registry = feature_registry(FeaturesConfig())
    families = {s.family for s in registry}
    docs = (ROOT / "docs" / "features.md").read_text()
    assert f"lists {len(registry)} features in {len(families)} families" in docs
