"""The monitor's dashboard: one self-contained HTML page (inline CSS and SVG, no script, nothing fetched).

Sections, top to bottom: status and alerts; drift share (overall, per family) and the domain classifier;
the drifting features' reference-vs-current plots; the score histogram; estimated vs realised AUC and
churn rate over the windows; business impact; every feature's test in one table. Its size does not grow
with the number of rows checked (only with features and cutoffs). Same result → same bytes.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from churnflow.monitoring.check import CheckResult
from churnflow.monitoring.drift import ColumnDrift
from churnflow.monitoring.svg import (
    BAND,
    CURRENT,
    REALISED,
    REFERENCE,
    horizontal_bars,
    line_chart,
    paired_bars,
)

STATUS_COLOURS = {"ok": "#2e7d32", "warning": "#ef6c00", "critical": "#c62828"}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f6f8fa;color:#1f2d3d}
header{padding:18px 28px;color:#fff}
header h1{margin:0 0 4px 0;font-size:22px} header p{margin:0;opacity:.9}
main{padding:8px 28px 40px 28px;max-width:1280px}
section{background:#fff;border:1px solid #e3e7ec;border-radius:8px;padding:14px 18px;margin:14px 0}
h2{font-size:17px;margin:0 0 10px 0}
.kpis{display:flex;flex-wrap:wrap;gap:12px}
.kpi{border:1px solid #e3e7ec;border-radius:6px;padding:10px 14px;min-width:170px}
.kpi b{display:block;font-size:22px} .kpi span{font-size:12px;color:#5b6b7b}
.grid{display:flex;flex-wrap:wrap;gap:10px}
.grid figure{margin:0;border:1px solid #eef1f4;border-radius:6px;padding:4px}
figcaption{font-size:11px;color:#5b6b7b;max-width:380px;padding:0 4px 4px 4px}
table{border-collapse:collapse;font-size:12px;width:100%}
th,td{border-bottom:1px solid #eef1f4;padding:3px 6px;text-align:right}
th{background:#f6f8fa;position:sticky;top:0} td:first-child,th:first-child{text-align:left}
tr.drift td{background:#fdecea}
.sev{font-weight:bold;text-transform:uppercase;font-size:11px}
.muted{color:#8593a3} .legend span{display:inline-block;width:12px;height:8px;margin:0 4px 0 10px}
details summary{cursor:pointer;font-weight:bold;margin:6px 0}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _kpi(value: str, label: str, colour: str = "") -> str:
    style = f' style="color:{colour}"' if colour else ""
    return f'<div class="kpi"><b{style}>{_esc(value)}</b><span>{_esc(label)}</span></div>'


def _alerts(result: CheckResult) -> str:
    if not result.alerts:
        return "<p>No alert: nothing drifted beyond what the reference itself varies by.</p>"
    rows = []
    for a in result.alerts:
        colour = "#8593a3" if a.suppressed else STATUS_COLOURS.get(a.severity, "#000")
        note = " (cooldown: raised recently, not counted)" if a.suppressed else ""
        rows.append(
            f'<tr><td class="sev" style="color:{colour}">{_esc(a.severity)}{_esc(note)}</td>'
            f'<td>{_esc(a.kind)}</td><td style="text-align:left">{_esc(a.message)}</td></tr>'
        )
    return (
        '<table><tr><th>severity</th><th>kind</th><th style="text-align:left">message</th></tr>'
        + "".join(rows)
        + "</table>"
    )


def _feature_plot(column: ColumnDrift) -> str:
    svg = paired_bars(column.bin_labels, column.reference_shares, column.current_shares, column.name)
    caption = (
        f"{column.test} {column.statistic:.3g}, adjusted p {column.p_adjusted:.2g}; PSI {column.psi:.3f}, "
        f"JS {column.jensenshannon:.3f}"
        + (f", W/sd {column.wasserstein:.3f}" if column.wasserstein is not None else "")
        + f"; mean {_num(column.mean_reference)} → {_num(column.mean_current)}"
    )
    return f"<figure>{svg}<figcaption>{_esc(caption)}</figcaption></figure>"


def _feature_table(result: CheckResult) -> str:
    head = (
        "<tr><th>feature</th><th>family</th><th>kind</th><th>test</th><th>statistic</th><th>p</th>"
        "<th>p adj.</th><th>PSI</th><th>JS</th><th>W/sd</th><th>null ref→cur</th><th>drift</th></tr>"
    )
    ordered = sorted(result.features, key=lambda c: (c.p_adjusted, -c.effect_value, c.name))
    rows = []
    for c in [result.score, *ordered]:
        rows.append(
            f'<tr class="{"drift" if c.drift else ""}"><td>{_esc(c.name)}</td><td>{_esc(c.family)}</td>'
            f"<td>{_esc(c.kind)}</td><td>{_esc(c.test)}</td><td>{c.statistic:.4g}</td><td>{c.p_value:.3g}</td>"
            f"<td>{c.p_adjusted:.3g}</td><td>{c.psi:.3f}</td><td>{c.jensenshannon:.3f}</td>"
            f"<td>{_num(c.wasserstein)}</td><td>{c.null_share_reference:.2f}→{c.null_share_current:.2f}</td>"
            f"<td>{'yes' if c.drift else ''}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _performance(result: CheckResult) -> str:
    windows = result.performance
    if not windows:
        return "<p>No window.</p>"
    labels = [w.cutoff[:10] for w in windows]
    auc = line_chart(
        labels,
        [
            ("estimated AUC (label-free)", [w.estimated_auc for w in windows], CURRENT),
            ("realised AUC", [w.realised_auc for w in windows], REALISED),
        ],
        "ROC-AUC per cutoff: label-free estimate (band: 95% if no concept drift) and realised",
        band=([w.auc_band[0] for w in windows], [w.auc_band[1] for w in windows]),
    )
    rate = line_chart(
        labels,
        [
            ("expected churn rate", [w.expected_positive_rate for w in windows], CURRENT),
            ("realised churn rate", [w.realised_positive_rate for w in windows], REALISED),
            (
                "reference's realised rate at the offset",
                [w.reference_positive_rate for w in windows],
                REFERENCE,
            ),
        ],
        "Churn rate per cutoff: expected from the calibrated scores (band: 95%), realised, and the "
        "reference world's realised rate at the same cutoff offset (the label-shift test)",
        band=([w.positive_rate_band[0] for w in windows], [w.positive_rate_band[1] for w in windows]),
    )
    s = result.summary
    note = (
        f"Label-free AUC over the compared rows {_num(s['estimated_auc'])} vs reference "
        f"{_num(s['reference_estimated_auc'])} (reference realised {_num(s['reference_realised_auc'])}); "
        f"realised over {s['labelled_rows']:,} labelled rows: {_num(s['realised_auc'])}. "
        "The estimate assumes no concept drift: P(churn | features) unchanged and the scores calibrated."
    )
    return f"{auc}{rate}<p>{_esc(note)}</p>"


def _business(result: CheckResult) -> str:
    b = result.summary["business"]
    kpis = [
        _kpi(f"{b['expected_churners']:.0f}", "expected churners over all cutoffs (Σ p)"),
        _kpi(
            _num(b["expected_net_value_per_1000"], 0),
            f"expected net value per 1,000 users scored, top {b['top_k_share']:.0%} contacted",
        ),
        _kpi(_num(b["reference_expected_net_value_per_1000"], 0), "the same on the reference"),
        _kpi(_num(b["realised_net_value_per_1000"], 0), "realised, where labels are known"),
    ]
    return f'<div class="kpis">{"".join(kpis)}</div>'


def render_dashboard(
    result: CheckResult, reference: Mapping[str, Any], title: str = "churnflow monitor"
) -> str:
    """The whole dashboard as one HTML string."""
    s, w = result.summary, result.window
    colour = STATUS_COLOURS[result.status]
    families = result.families()
    fam_svg = horizontal_bars(
        list(families),
        [f["drifting"] for f in families.values()],
        [f["watched"] for f in families.values()],
        "Drifting / watched features per family",
    )
    d = result.domain
    kpis = [
        _kpi(
            f"{s['drift_share']:.1%}",
            f"drift share: {s['n_drifting']} of {s['n_features']} features",
            colour if s["n_drifting"] else "",
        ),
        _kpi(
            "–" if d is None else f"{d.auc:.3f}",
            "domain classifier AUC" + ("" if d is None else f" (threshold {d.threshold:.3f})"),
            STATUS_COLOURS["critical"] if d is not None and d.drift else "",
        ),
        _kpi(_num(s["estimated_auc"]), f"label-free AUC (reference {_num(s['reference_estimated_auc'])})"),
        _kpi(
            "yes" if result.score.drift else "no",
            f"score drift ({result.score.test} {result.score.statistic:.3g})",
        ),
        _kpi(s["regime"], f"tests for {w['compared_users']:,} users"),
    ]
    shown = int(reference["settings"].get("dashboard_features", 24))
    plots = "".join(_feature_plot(c) for c in result.drifting[:shown])
    intro = f"<p>{len(result.drifting)} drifting features, most significant first (up to {shown}).</p>"
    if not plots:
        intro = "<p>No feature drifts. The four most significant (still within the noise), for reference:</p>"
        quiet = sorted(result.features, key=lambda c: (c.p_adjusted, c.name))[:4]
        plots = "".join(_feature_plot(c) for c in quiet)
    hist = s["score_histogram"]
    edges = hist["edges"]
    score_svg = paired_bars(
        [f"{edges[i]:.2f}" for i in range(len(edges) - 1)],
        hist["reference"],
        hist["current"],
        "churn probability: reference (out-of-sample rows) vs current",
        width=760,
        height=220,
    )
    missing = w["reference_offsets_missing"]
    window_line = (
        f"{w['n_users']:,} users, {w['n_rows']:,} rows at {len(w['offsets_days'])} cutoffs "
        f"({w['first_cutoff'][:10]} … {w['last_cutoff'][:10]}); "
        f"drift compared on {w['compared_rows']:,} rows "
        f"at {len(w['compared_offsets_days'])} cutoff offsets the reference holds"
        + (f" (reference offsets absent here: {missing})" if missing else "")
        + f"; reference: {w['reference_rows']:,} training rows of {w['reference_users']:,} users."
    )
    legend = (
        f'<p class="legend muted"><span style="background:{REFERENCE}"></span>reference'
        f'<span style="background:{CURRENT}"></span>current<span style="background:{BAND}"></span>'
        "band if nothing drifted</p>"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{_esc(title)}</title><style>{CSS}</style></head>
<body>
<header style="background:{colour}"><h1>{_esc(title)} — {_esc(result.status.upper())}</h1>
<p>{_esc(window_line)}</p></header>
<main>
<section id="alerts"><h2>Alerts</h2>{_alerts(result)}</section>
<section id="overview"><h2>Drift overview</h2><div class="kpis">{"".join(kpis)}</div>
<div style="margin-top:12px">{fam_svg}</div></section>
<section id="features"><h2>Drifting features: reference vs current</h2>{legend}{intro}
<div class="grid">{plots}</div></section>
<section id="score"><h2>Score</h2>{score_svg}</section>
<section id="performance"><h2>Performance over windows</h2>{_performance(result)}</section>
<section id="business"><h2>Business impact</h2>{_business(result)}</section>
<section id="table"><h2>Every watched column</h2><details><summary>{len(result.features) + 1} columns
(drifting rows highlighted)</summary>{_feature_table(result)}</details></section>
<p class="muted">Source: {_esc(w["source"])}. Data time of this check: {_esc(w["at"])}.
See docs/monitoring.md for
the tests, thresholds and assumptions.</p>
</main></body></html>
"""
