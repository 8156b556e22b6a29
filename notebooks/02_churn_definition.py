# %% [markdown]
# # 02 · Churn definition
# The point-in-time label (`reports/churn_definition.json`, `artifacts/labels.parquet`), retention by
# cohort and by level (Kaplan–Meier from the events), and how the label depends on the inactivity threshold.

# %% tags=["parameters"]
reports_dir = "reports"
artifacts_dir = "artifacts"
params_path = "params.yaml"
inactivity_thresholds = [7, 14, 21, 28, 35]

# %%
# %matplotlib inline
from pathlib import Path

import matplotlib.pyplot as plt
import polars as pl
from IPython.display import Markdown, display
from lifelines import KaplanMeierFitter

from churnflow.config import Config, load_config
from churnflow.reports.notebooks import flatten, missing_note, read_json_or_none
from churnflow.reports.retention import inactivity_sensitivity, retention_table

pl.Config.set_tbl_rows(60)
pl.Config.set_fmt_str_lengths(120)

summary_path = Path(reports_dir) / "churn_definition.json"
labels_path = Path(artifacts_dir) / "labels.parquet"
events_path = Path(artifacts_dir) / "events.parquet"
labels_cfg = (load_config(params_path) if Path(params_path).is_file() else Config()).labels
summary = read_json_or_none(summary_path)

# %% [markdown]
# ## Definition and summary

# %%
if summary is None:
    display(Markdown(missing_note(summary_path, "label")))
else:
    flat = flatten(summary)
    display(pl.DataFrame({"key": list(flat), "value": [str(v) for v in flat.values()]}))

# %% [markdown]
# ## Churn rate per cutoff and churn kinds

# %%
if not labels_path.is_file():
    display(Markdown(missing_note(labels_path, "label")))
else:
    labels = pl.read_parquet(labels_path)
    per_cutoff = (
        labels.group_by("cutoff")
        .agg(users=pl.len(), churned=pl.col("label").sum(), churn_rate=pl.col("label").mean())
        .sort("cutoff")
    )
    display(per_cutoff)
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(per_cutoff["cutoff"].to_list(), per_cutoff["churn_rate"].to_list(), marker="o", color="#5b7c99")
    ax.set_ylabel("share churning within the horizon")
    ax.set_title("Churn rate per cutoff")
    plt.show()
    display(labels.group_by("churn_kind").agg(rows=pl.len()).sort("rows", descending=True))

# %% [markdown]
# ## Retention by cohort and by level (Kaplan–Meier)
# Days from a user's first event in the export until the first churn the label rules date (cancellation,
# or the start of an inactivity of `inactivity_days`), censored at the export's end; cohorts by
# registration (customers from before the export, then sign-ups by month), levels at the first event.

# %%
if not events_path.is_file():
    display(Markdown(missing_note(events_path, "load")))
else:
    events = pl.read_parquet(events_path, columns=["user_id", "ts", "page", "registration", "level"])
    table = retention_table(events, labels_cfg)
    display(
        Markdown(
            f"{table.height:,} users, {int(table['churned'].sum()):,} churned "
            f"({table['churned'].mean():.1%}); median follow-up {table['duration'].median():.0f} days "
            "from the first event."
        )
    )
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    by_size = table["cohort"].value_counts().sort(["count", "cohort"], descending=[True, False])
    cohorts = by_size["cohort"].head(5).to_list()
    for ax, column, groups in (
        (axes[0], "cohort", cohorts),
        (axes[1], "level", sorted(table["level"].drop_nulls().unique().to_list())),
    ):
        for group in groups:
            part = table.filter(pl.col(column) == group)
            if part.height < 5:
                continue
            kmf = KaplanMeierFitter(label=f"{group} ({part.height})")
            kmf.fit(part["duration"].to_numpy(), part["churned"].to_numpy())
            kmf.plot_survival_function(ax=ax, ci_show=True)
        ax.set_xlabel("days since the first event in the export")
        ax.set_title(
            f"Retention by {column} (level at the first event)"
            if column == "level"
            else "Retention by registration cohort"
        )
    axes[0].set_ylabel("share not yet churned")
    plt.show()

# %% [markdown]
# ## Sensitivity to the inactivity threshold
# The same label rules with other `inactivity_days`: a longer threshold needs a longer label window (fewer
# usable cutoffs) and turns fewer gaps into churn.

# %%
if events_path.is_file():
    sensitivity = inactivity_sensitivity(events, labels_cfg, inactivity_thresholds)
    display(sensitivity)
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(
        sensitivity["inactivity_days"].to_list(),
        sensitivity["churn_rate"].to_list(),
        marker="o",
        color="#e07b24",
    )
    ax.axvline(labels_cfg.inactivity_days, color="#8593a3", linestyle="--", label="configured")
    ax.set_xlabel("inactivity_days")
    ax.set_ylabel("churn rate (label mean)")
    ax.set_title("Label churn rate vs inactivity threshold")
    ax.legend()
    plt.show()
