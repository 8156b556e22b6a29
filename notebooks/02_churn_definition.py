# %% [markdown]
# # 02 · Churn definition
# The point-in-time label (`reports/churn_definition.json`) and the label table (`artifacts/labels.parquet`).

# %% tags=["parameters"]
reports_dir = "reports"
artifacts_dir = "artifacts"

# %%
# %matplotlib inline
from pathlib import Path

import polars as pl
from IPython.display import Markdown, display

from churnflow.monitoring.notebooks import flatten, missing_note, read_json_or_none

pl.Config.set_tbl_rows(60)
pl.Config.set_fmt_str_lengths(120)

summary_path = Path(reports_dir) / "churn_definition.json"
labels_path = Path(artifacts_dir) / "labels.parquet"
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
    ax = per_cutoff.to_pandas().plot(x="cutoff", y="churn_rate", marker="o", legend=False)
    ax.set_ylabel("share of users churning within the horizon")
    ax.set_title("Churn rate per cutoff")
    display(labels.group_by("churn_kind").agg(rows=pl.len()).sort("rows", descending=True))
