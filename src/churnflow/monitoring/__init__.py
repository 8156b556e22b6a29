"""Monitoring: drift reference (PSI bins) and drift check, the HTML drift report, report notebooks."""

from churnflow.monitoring.drift import (
    ColumnDrift,
    DriftInputError,
    DriftReport,
    build_drift_reference,
    check_drift,
    psi,
    select_monitored_features,
    select_reference_rows,
)
from churnflow.monitoring.report import render_drift_html

__all__ = [
    "ColumnDrift",
    "DriftInputError",
    "DriftReport",
    "build_drift_reference",
    "check_drift",
    "psi",
    "render_drift_html",
    "select_monitored_features",
    "select_reference_rows",
]
