# %% [markdown]
# # 03 · Features
# The feature catalog (`reports/feature_catalog.md`) and how a few features differ between churners and
# the others (`artifacts/features.parquet` joined with `artifacts/labels.parquet`).

# %% tags=["parameters"]
reports_dir = "reports"
artifacts_dir = "artifacts"
params_path = "params.yaml"
n_features_shown = 6

# %%
# %matplotlib inline
from pathlib import Path

import matplotlib.pyplot as plt
import polars as pl
from IPython.display import Markdown, display

from churnflow.reports.notebooks import missing_note

pl.Config.set_tbl_rows(60)
pl.Config.set_fmt_str_lengths(120)

catalog_path = Path(reports_dir) / "feature_catalog.md"
features_path = Path(artifacts_dir) / "features.parquet"
labels_path = Path(artifacts_dir) / "labels.parquet"

# %% [markdown]
# ## Catalog

# %%
if catalog_path.is_file():
    display(Markdown(catalog_path.read_text()))
else:
    display(Markdown(missing_note(catalog_path, "features")))

# %% [markdown]
# ## Summary statistics and distributions by label

# %%
if not features_path.is_file() or not labels_path.is_file():
    display(Markdown(missing_note(features_path if not features_path.is_file() else labels_path, "features")))
else:
    features = pl.read_parquet(features_path)
    labels = pl.read_parquet(labels_path).select("user_id", "cutoff", "label")
    table = features.join(labels, on=["user_id", "cutoff"], how="inner")
    numeric = [c for c, t in features.schema.items() if t.is_numeric() and c not in ("user_id", "cutoff")]
    display(Markdown(f"{features.height} rows × {len(numeric)} numeric features; {table.height} labelled."))
    display(features.select(numeric).describe())
    by_variance = sorted(numeric, key=lambda c: -(table[c].cast(pl.Float64).std() or 0.0))
    shown = sorted(by_variance[:n_features_shown])
    for name in shown if table.height else []:
        fig, ax = plt.subplots(figsize=(7, 3))
        for label, colour in ((0, "tab:blue"), (1, "tab:red")):
            values = table.filter(pl.col("label") == label)[name].cast(pl.Float64).drop_nulls().to_numpy()
            ax.hist(values, bins=30, alpha=0.5, density=True, color=colour, label=f"label {label}")
        ax.set_title(f"{name} by label (1 = churn)")
        ax.legend()
        plt.show()
