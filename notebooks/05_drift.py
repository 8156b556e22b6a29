# %% [markdown]
# # 05 · Drift monitoring
# The reference the served model ships with (`artifacts/drift_reference.json`, `drift_baseline` stage) and
# the latest check (`reports/drift/drift.json`: the pipeline's self-check on users the model never saw,
# checked like a new export). The full page of that check is `reports/drift/dashboard.html`; for a new
# export run `churnflow monitor --events NEW --out DIR` (docs/monitoring.md).

# %% tags=["parameters"]
reports_dir = "reports"
artifacts_dir = "artifacts"
params_path = "params.yaml"
n_features_plotted = 6

# %%
from pathlib import Path

import polars as pl
from IPython.display import SVG, Markdown, display

from churnflow.monitoring.svg import CURRENT, REALISED, horizontal_bars, line_chart, paired_bars
from churnflow.reports.notebooks import missing_note, read_json_or_none

pl.Config.set_tbl_rows(40)
pl.Config.set_fmt_str_lengths(80)

reference_path = Path(artifacts_dir) / "drift_reference.json"
check_path = Path(reports_dir) / "drift" / "drift.json"
reference = read_json_or_none(reference_path)
check = read_json_or_none(check_path)
if check is not None and "window" not in check:  # the stage wrote why there is no self-check
    display(Markdown(f"No self-check in this run: {check.get('reason', check.get('status'))}."))
    check = None

# %% [markdown]
# ## The reference

# %%
if reference is None:
    display(Markdown(missing_note(reference_path, "drift_baseline")))
else:
    score = reference["score"]
    offsets = reference["offsets_days"]
    display(
        Markdown(
            f"**{reference['n_rows']:,} training rows** of {reference['n_users']:,} users at "
            f"{len(offsets)} cutoff "
            f"offsets (days {offsets[0]}–{offsets[-1]} after the export's first day); "
            f"**{len(reference['feature_names'])} features watched**. Score reference: {score['n_rows']:,} "
            f"out-of-sample rows ({score['rows']}), label-free AUC {score['estimated_auc']:.3f}, realised "
            f"{score['realised_auc'] if score['realised_auc'] is None else round(score['realised_auc'], 3)}. "
            f"Domain-classifier threshold {reference['domain']['threshold']:.3f} (null AUCs "
            f"{', '.join(f'{a:.3f}' for a in reference['domain']['null_aucs'])})."
        )
    )
    kinds = pl.DataFrame(
        [
            {
                "feature": name,
                "kind": "discrete" if col["kind"] == "numeric" and col["discrete"] else col["kind"],
                "cells": len(col["counts"]),
                "null_share": col["null_count"] / max(col["null_count"] + sum(col["counts"]), 1),
            }
            for name, col in reference["columns"].items()
        ]
    )
    display(kinds.group_by("kind").agg(features=pl.len(), median_cells=pl.col("cells").median()).sort("kind"))

# %% [markdown]
# ## The latest check

# %%
if check is None:
    display(Markdown(missing_note(check_path, "drift_baseline")))
else:
    w, s = check["window"], check["summary"]
    display(
        Markdown(
            f"**Status: {check['status']}** — {w['source']}: {w['compared_users']:,} users, "
            f"{w['compared_rows']:,} rows compared ({s['regime']}); **{s['n_drifting']} of {s['n_features']} "
            f"features drift** ({s['drift_share']:.1%}); domain classifier AUC "
            f"{check['domain_classifier']['auc'] if check['domain_classifier'] else float('nan'):.3f}; "
            f"label-free AUC {s['estimated_auc']:.3f} vs reference {s['reference_estimated_auc']:.3f}."
        )
    )
    alerts = check["alerts"]
    display(
        Markdown(
            "No alert."
            if not alerts
            else "\n".join(f"- **{a['severity']}** {a['kind']}: {a['message']}" for a in alerts)
        )
    )
    families = check["families"]
    display(
        SVG(
            horizontal_bars(
                list(families),
                [f["drifting"] for f in families.values()],
                [f["watched"] for f in families.values()],
                "Drifting / watched features per family",
            )
        )
    )

# %% [markdown]
# ## Most significant features: reference vs current

# %%
if check is not None:
    features = check["features"]  # a list, ordered by adjusted p-value
    table = pl.DataFrame(
        [
            {
                k: f[k]
                for k in (
                    "name",
                    "family",
                    "test",
                    "statistic",
                    "p_adjusted",
                    "psi",
                    "jensenshannon",
                    "drift",
                )
            }
            for f in features[:15]
        ]
    )
    display(table)
    for f in features[:n_features_plotted]:
        display(SVG(paired_bars(f["bin_labels"], f["reference_shares"], f["current_shares"], f["name"])))

# %% [markdown]
# ## Label-free AUC estimate vs realised, per cutoff

# %%
if check is not None and check["performance"]:
    windows = check["performance"]
    labels = [p["cutoff"][:10] for p in windows]
    display(
        SVG(
            line_chart(
                labels,
                [
                    ("estimated AUC (label-free)", [p["estimated_auc"] for p in windows], CURRENT),
                    ("realised AUC", [p["realised_auc"] for p in windows], REALISED),
                ],
                "ROC-AUC per cutoff (band: 95% if no concept drift)",
                band=([p["auc_band"][0] for p in windows], [p["auc_band"][1] for p in windows]),
            )
        )
    )
