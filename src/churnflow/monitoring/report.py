"""A small, self-contained HTML drift report: status, PSI table, PSI bar chart and score shares.

Figures are built with Matplotlib's object API (no pyplot state) and embedded as base64 PNG without
volatile metadata, so the same :class:`DriftReport` always renders to the same HTML string.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from churnflow.monitoring.drift import ColumnDrift, DriftReport, bin_labels

if TYPE_CHECKING:
    from matplotlib.figure import Figure

STATUS_COLOURS: dict[str, str] = {"ok": "#2e7d32", "warn": "#ef6c00", "alert": "#c62828"}


def _new_figure(size: tuple[float, float]) -> Figure:
    """A Matplotlib figure with its own Agg canvas (no pyplot, imported only when a plot is drawn)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig


def plot_psi(report: DriftReport, max_features: int = 30) -> Figure:
    """Horizontal bars of PSI per feature (largest first, at most ``max_features``) with threshold lines."""
    ordered = sorted(report.features, key=lambda f: (-f.psi, f.name))[:max_features]
    fig = _new_figure((8, 0.3 * len(ordered) + 1.5))
    ax = fig.add_subplot()
    names = [f.name for f in ordered][::-1]
    values = [f.psi for f in ordered][::-1]
    colours = [STATUS_COLOURS[f.status] for f in ordered][::-1]
    ax.barh(names, values, color=colours)
    ax.axvline(report.psi_warn, color=STATUS_COLOURS["warn"], linestyle="--", label="warn")
    ax.axvline(report.psi_alert, color=STATUS_COLOURS["alert"], linestyle="--", label="alert")
    ax.set_xlabel("PSI")
    ax.set_title("Population stability index per feature")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def plot_shares(column: ColumnDrift) -> Figure:
    """Reference vs current share per bin of one column (e.g. the score)."""
    return _share_bars(column.name, column.bin_labels, column.reference_shares, column.current_shares)


def plot_reference_bins(name: str, bins: Mapping[str, Any]) -> Figure:
    """Reference share per bin of one column, as stored in the drift reference (null bin last)."""
    null_share = float(bins["null_share"])
    shares = [float(s) * (1.0 - null_share) for s in bins["shares"]] + [null_share]
    return _share_bars(name, bin_labels(bins), shares, None)


def _share_bars(
    name: str, labels: Sequence[str], reference: Sequence[float], current: Sequence[float] | None
) -> Figure:
    fig = _new_figure((8, 3.2))
    ax = fig.add_subplot()
    x = np.arange(len(labels))
    width = 0.4 if current is not None else 0.8
    ax.bar(x - (width / 2 if current is not None else 0), reference, width, label="reference")
    if current is not None:
        ax.bar(x + width / 2, current, width, label="current")
    ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("share of rows")
    ax.set_title(name)
    ax.legend()
    fig.tight_layout()
    return fig


def figure_png_base64(fig: Figure) -> str:
    """PNG bytes of ``fig`` (no timestamp or software metadata) as base64 text."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _row(column: ColumnDrift) -> str:
    colour = STATUS_COLOURS[column.status]
    return (
        f"<tr><td>{html.escape(column.name)}</td><td>{column.kind}</td><td>{column.psi:.4f}</td>"
        f"<td>{column.ks_binned:.3f}</td><td>{column.null_share_reference:.3f}</td>"
        f"<td>{column.null_share_current:.3f}</td>"
        f'<td style="color:{colour};font-weight:bold">{column.status}</td></tr>'
    )


def render_drift_html(report: DriftReport, title: str = "churnflow drift report") -> str:
    """The whole report as one self-contained HTML page (figures inline)."""
    ordered = sorted(report.features, key=lambda f: (-f.psi, f.name))
    counts = ", ".join(f"{k}: {v}" for k, v in report.counts().items())
    header = (
        "<tr><th>column</th><th>kind</th><th>PSI</th><th>KS (binned)</th>"
        "<th>null share (ref)</th><th>null share (new)</th><th>status</th></tr>"
    )
    rows = "\n".join(_row(c) for c in [report.score, *ordered])
    psi_png = figure_png_base64(plot_psi(report))
    score_png = figure_png_base64(plot_shares(report.score))
    colour = STATUS_COLOURS[report.status]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}} td:first-child{{text-align:left}}</style>
</head><body>
<h1>{html.escape(title)}</h1>
<p>Overall status: <b style="color:{colour}">{report.status}</b> ·
{report.n_rows} rows checked against a reference of {report.n_reference} rows ·
thresholds PSI ≥ {report.psi_warn} warn, ≥ {report.psi_alert} alert · features {counts}</p>
<h2>Model score</h2>
<img alt="score shares" src="data:image/png;base64,{score_png}">
<h2>Features</h2>
<img alt="PSI per feature" src="data:image/png;base64,{psi_png}">
<table>{header}
{rows}
</table>
</body></html>
"""
