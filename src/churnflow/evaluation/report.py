# ruff: noqa: E501  (HTML/CSS template lines)
"""A self-contained HTML evaluation page: headline numbers, verdicts, embedded PNG figures and tables.

Input: an :class:`~churnflow.evaluation.evaluate.Evaluation` plus the model's metadata; output: one HTML
string (figures as base64 data URIs, no external assets, nothing run-dependent).
"""

from __future__ import annotations

import base64
import html
from typing import Any

import polars as pl

from churnflow.evaluation.evaluate import HEADLINE_VIEW, VIEW_TITLES, Evaluation

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


def _ci(block: dict[str, Any], key: str, fmt: str = ".3f") -> str:
    if key not in block:
        return "n/a"
    lo, hi = block.get(f"{key}_ci", [float("nan")] * 2)
    return f"{block[key]:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def _view_table(m: dict[str, Any]) -> str:
    """One row per test view: model, latent-state model and oracle AUC, calibration and threshold figures."""
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "view",
            "users / rows",
            "churn rate",
            "model ROC-AUC",
            "PR-AUC",
            "latent-state model",
            "oracle",
            "model / oracle",
            "ECE",
            "mean predicted",
        )
    )
    rows = []
    for name, title in VIEW_TITLES.items():
        t = m["test"].get(name, {})
        if "roc_auc" not in t:
            rows.append(
                f"<tr><td>{title}</td><td colspan=9>{html.escape(str(t.get('note', 'n/a')))}</td></tr>"
            )
            continue
        o = m.get("oracle", {}).get(name, {})
        lat = m.get("latent_model", {}).get(name, {})
        cells = [
            title,
            f"{t['n_users']:,} / {t['n_rows']:,}",
            f"{t['positive_rate']:.3f}",
            _ci(t, "roc_auc"),
            _ci(t, "pr_auc"),
            _ci(lat, "roc_auc"),
            _ci(o, "roc_auc"),
            _ci({"r": o["model_over_oracle"], "r_ci": o["model_over_oracle_ci"]}, "r")
            if o.get("roc_auc")
            else "n/a",
            f"{t['ece']:.3f}",
            f"{t['mean_probability']:.3f}",
        ]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def render_html(evaluation: Evaluation, meta: dict[str, Any]) -> str:
    """The evaluation page as one self-contained HTML string (deterministic: no run ids or versions)."""
    m = evaluation.metrics
    t = m["test"][HEADLINE_VIEW]
    nu = m["test"].get("new_users", {})
    b = m["business"]
    cards = [
        _card("known customers: ROC-AUC [95% CI]", _ci(t, "roc_auc")),
        _card("new users: ROC-AUC [95% CI]", _ci(nu, "roc_auc")),
        _card("ECE (known customers)", f"{t.get('ece', float('nan')):.3f}"),
        _card(
            "mean predicted vs churn rate",
            f"{t.get('mean_probability', 0):.3f} vs {t.get('positive_rate', 0):.3f}",
        ),
        _card(f"F1 @ {t.get('threshold', 0):.3f} (validation)", f"{t.get('f1', 0):.3f}"),
        _card("lift @ top 10%", f"{t.get('lift_at_10', 0):.2f}×"),
    ]
    o = m.get("oracle", {}).get(HEADLINE_VIEW, {})
    if "roc_auc" in o:
        met = m["oracle"].get("goal_met")
        cards.insert(1, _card("oracle ceiling ROC-AUC", _ci(o, "roc_auc")))
        cards.insert(
            2,
            _card(
                f"model / oracle (goal ≥ {m['oracle']['goal_ratio']:.2f})",
                _ci({"r": o["model_over_oracle"], "r_ci": o["model_over_oracle_ci"]}, "r"),
                "ok" if met else "bad",
            ),
        )
    verdicts = "".join(f"<li>{html.escape(msg)}</li>" for msg in evaluation.messages)
    choice = meta.get("threshold_choice", {})
    split = m.get("split", {})
    figs = "".join(_img(png, name.replace("_", " ")) for name, png in evaluation.figures.items())
    cal_rows = m.get("oracle", {}).get("calibration", [])
    cal_html = (
        _table(pl.DataFrame(cal_rows)) if cal_rows else "<p>No ground truth (real export): no oracle.</p>"
    )
    leak_html = _table(evaluation.leakage) if evaluation.leakage is not None else ""
    imp_html = _table(evaluation.importance) if evaluation.importance is not None else ""
    op = b.get("validation_best_share")
    business = (
        f"Operating points chosen on validation, reported on the known-customer test rows: targeting the "
        f"validation-best share {op:.0%} gives ${b['net_value_at_validation_share']:,.0f}; contacting everyone "
        f"whose calibrated risk is at least the break-even {b['break_even_probability']:.3f} targets "
        f"{b['share_above_break_even']:.0%} and gives ${b['net_value_above_break_even']:,.0f}."
        if op is not None
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"/><title>churnflow evaluation — {html.escape(m["model"])}</title>
<style>{CSS}</style></head><body>
<h1>Churn model evaluation</h1>
<p class="sub">{html.escape(m["model"])} · purged out-of-time test at {html.escape(", ".join(split.get("test_cutoffs", [])))}
· trained on {split.get("rows", {}).get("development", 0):,} rows whose labels were known by the first test cutoff
· calibration: {html.escape(str(m.get("calibration", {}).get("method")))}</p>
<div class="cards">{"".join(cards)}</div>
<ul>{verdicts}</ul>
<h2>Test views</h2>
<p><b>Known customers</b> are users the model was trained on, scored at later cutoffs (the deployment case);
<b>new users</b> were never in training. Intervals resample users, not rows. The <b>oracle</b> is the probability
of the label given the simulator's full latent state at the cutoff (Monte-Carlo re-simulation with the project's
own label function) — a ceiling no model can honestly beat; the <b>latent-state model</b> is the same model family
given that latent state as extra features: the gap between it and the model is what the features miss.</p>
{_view_table(m)}
<p>Threshold {t.get("threshold", 0):.4f}: {html.escape(str(choice.get("rule", "")))} — {html.escape(str(choice.get("how", "")))}.
{html.escape(business)}</p>
<div class="grid">{figs}</div>
<h2>Oracle calibration per test cutoff</h2>{cal_html}
<h2>Classification report (known customers, threshold {t.get("threshold", 0):.4f})</h2><pre>{html.escape(evaluation.classification_report)}</pre>
<h2>Feature importance (known customers, SHAP)</h2>{imp_html}
<h2>Leakage audit: single-feature ROC-AUC on development rows</h2>{leak_html}
</body></html>
"""
