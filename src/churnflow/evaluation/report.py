# ruff: noqa: E501  (HTML/CSS template lines)
"""A self-contained HTML evaluation page: headline numbers, verdicts, embedded PNG figures and tables.

Input: an :class:`~churnflow.evaluation.evaluate.Evaluation` plus the model's metadata and registry record;
output: one HTML string (figures as base64 data URIs, no external assets).
"""

from __future__ import annotations

import base64
import html
from typing import Any

import polars as pl

from churnflow.evaluation.evaluate import Evaluation

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1150px;color:#222}
h1{margin-bottom:.2rem} .sub{color:#666;margin-top:0}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:1rem 0}
.card{border:1px solid #ddd;border-radius:8px;padding:.7rem 1rem;min-width:140px;background:#fafafa}
.card .v{font-size:1.5rem;font-weight:600} .card .k{color:#666;font-size:.85rem}
.ok{color:#1a7f37} .bad{color:#c62828} .warn{background:#fff4e5;border-left:4px solid #f0a020;padding:.5rem 1rem}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:1rem}
figure{margin:0;border:1px solid #eee;border-radius:6px;padding:.5rem} figure img{max-width:100%}
table{border-collapse:collapse;font-size:.88rem;margin:.5rem 0} td,th{border:1px solid #ddd;padding:.25rem .6rem}
th{background:#f3f3f3} pre{background:#f6f8fa;padding:.8rem;border-radius:6px}
"""


def _img(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}"/><figcaption>{html.escape(caption)}</figcaption></figure>'


def _card(key: str, value: str, cls: str = "") -> str:
    return f'<div class="card"><div class="v {cls}">{html.escape(value)}</div><div class="k">{html.escape(key)}</div></div>'


def _table(frame: pl.DataFrame, max_rows: int = 25) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = []
    for row in frame.head(max_rows).iter_rows():
        cells = "".join(
            f"<td>{html.escape(f'{v:.4g}' if isinstance(v, float) else str(v))}</td>" for v in row
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render_html(evaluation: Evaluation, meta: dict[str, Any], registry: dict[str, Any] | None) -> str:
    """The evaluation page as one self-contained HTML string."""
    m = evaluation.metrics
    t, b = m["test"], m["business"]
    lo, hi = t["roc_auc_ci"]
    cards = [
        _card("test ROC-AUC (95% CI)", f"{t['roc_auc']:.3f} [{lo:.3f}, {hi:.3f}]"),
        _card("PR-AUC", f"{t['pr_auc']:.3f}"),
        _card(f"F1 @ {t['threshold']:.3f}", f"{t['f1']:.3f}"),
        _card("precision / recall", f"{t['precision']:.2f} / {t['recall']:.2f}"),
        _card("lift @ top 10%", f"{t['lift_at_10']:.2f}×"),
        _card("capture @ top 25%", f"{t['capture_at_25']:.0%}"),
        _card("ECE", f"{t['ece']:.3f}"),
        _card("net value, top 25%", f"${b['net_value_top_25']:,.0f}"),
    ]
    if "oracle" in m:
        o = m["oracle"]
        cards.append(_card("model / oracle AUC", f"{o['ratio']:.3f}", "ok" if o.get("goal_met") else "bad"))
    verdicts = [f"<li>{html.escape(msg)}</li>" for msg in evaluation.messages]
    if registry:
        verdicts.append(
            f"<li>Registry: {html.escape(str(registry.get('registered_model')))} v{html.escape(str(registry.get('version')))}"
            f", aliases {html.escape(', '.join(registry.get('aliases', [])))} — {html.escape(str(registry.get('reason')))}</li>"
        )
    else:
        verdicts.append("<li>This model folder has no registry.json: it was not registered in MLflow.</li>")
    choice = meta.get("threshold_choice", {})
    figs = "".join(_img(png, name.replace("_", " ")) for name, png in evaluation.figures.items())
    leak = evaluation.leakage
    leak_html = _table(leak) if leak is not None else ""
    imp_html = _table(evaluation.importance) if evaluation.importance is not None else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"/><title>churnflow evaluation — {html.escape(m["model"])}</title>
<style>{CSS}</style></head><body>
<h1>Churn model evaluation</h1>
<p class="sub">{html.escape(m["model"])} · version {html.escape(str(m.get("model_version")))} · out-of-time test:
{m["n_test"]} user-cutoffs at {html.escape(", ".join(meta.get("test_cutoffs", [])))} · trained on {m["n_train"]} rows</p>
<div class="cards">{"".join(cards)}</div>
<ul>{"".join(verdicts)}</ul>
<p>Threshold {t["threshold"]:.4f}: {html.escape(str(choice.get("rule", "")))} — {html.escape(str(choice.get("how", "")))}.
Business view: ${b.get("net_value_top_k", 0):,.0f} net ({b.get("roi_top_k", 0):.2f} ROI) targeting the top
{b.get("top_k_share", 0):.0%}; the best share on this test set is {b["best_share"]:.0%} (${b["best_net_value"]:,.0f}).</p>
<div class="grid">{figs}</div>
<h2>Classification report (threshold {t["threshold"]:.4f})</h2><pre>{html.escape(evaluation.classification_report)}</pre>
<h2>Feature importance</h2>{imp_html}
<h2>Leakage audit: single-feature ROC-AUC on training rows</h2>{leak_html}
</body></html>
"""
