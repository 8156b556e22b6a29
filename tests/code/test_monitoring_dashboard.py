"""The dashboard: one offline HTML page; in a real headless Chromium when it is installed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from churnflow.config import EvaluateConfig, MonitorConfig
from churnflow.monitoring.check import run_check
from churnflow.monitoring.dashboard import render_dashboard
from churnflow.monitoring.reference import build_reference
from churnflow.reports.browser import chromium_path, inspect_page
from tests.code.monitor_synthetic import DAY0, FEATURES, clustered_rows, current, score, with_labels

CFG = MonitorConfig(calibration_splits=20, domain_splits=2, domain_rows=600, performance_draws=100)
SECTIONS = ("alerts", "overview", "features", "score", "performance", "business", "table")


@pytest.fixture(scope="module")
def checked() -> tuple[object, dict]:
    held = with_labels(clustered_rows(120, 2, prefix="h"), 2)
    reference = build_reference(
        clustered_rows(300, 1), FEATURES, DAY0, held, score(held), CFG, EvaluateConfig(), seed=5
    )
    result, _ = run_check(
        reference, current(clustered_rows(150, 3, shift=0.6)), CFG, EvaluateConfig(), seed=1
    )
    return result, reference


def test_dashboard_is_one_offline_page_with_every_section(checked: tuple[object, dict]) -> None:
    result, reference = checked
    page = render_dashboard(result, reference, title="t <x>")  # type: ignore[arg-type]
    assert page.startswith("<!DOCTYPE html>") and "<title>t &lt;x&gt;</title>" in page
    for section in SECTIONS:
        assert f'<section id="{section}">' in page, section
    assert "<script" not in page and "<link" not in page
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', page)
    assert page.count("<svg") >= 5  # family bars, drifting features, score, two performance charts
    assert "activity__listen_hours_7d" in page and "CRITICAL" in page
    assert page == render_dashboard(result, reference, title="t <x>")  # type: ignore[arg-type]


@pytest.mark.skipif(
    chromium_path() is None, reason="Chromium is not installed (make test installs Debian's chromium as root)"
)
def test_dashboard_renders_in_headless_chromium(
    checked: tuple[object, dict], tmp_path: Path, repo_root: Path
) -> None:
    pytest.importorskip("playwright.sync_api", reason="playwright (dev dependency) is not installed")
    result, reference = checked
    html = tmp_path / "dashboard.html"
    html.write_text(render_dashboard(result, reference, title="churnflow monitor test"))  # type: ignore[arg-type]
    shot = repo_root / "reports" / "screenshots" / "monitor_dashboard_test.png"
    report = inspect_page(html, screenshot=shot)
    assert report.clean, report
    assert report.title == "churnflow monitor test"
    assert report.svg_count >= 5 and report.body_text_chars > 1000
    assert shot.is_file() and shot.stat().st_size > 10_000
