# %% [markdown]
# # 05 · Drift reference
# The reference distributions that `churnflow monitor` compares new data with
# (`artifacts/drift_reference.json`, built by the `drift_baseline` stage; see docs/monitoring.md).

# %% tags=["parameters"]
reports_dir = "reports"
artifacts_dir = "artifacts"
n_features_plotted = 4

# %%
# %matplotlib inline
from pathlib import Path

import polars as pl
from IPython.display import Markdown, display

from churnflow.monitoring.notebooks import flatten, missing_note, read_json_or_none
from churnflow.monitoring.report import plot_reference_bins

pl.Config.set_tbl_rows(60)
pl.Config.set_fmt_str_lengths(120)

reference_path = Path(artifacts_dir) / "drift_reference.json"
reference = read_json_or_none(reference_path)

# %% [markdown]
# ## Monitored columns

# %%
if reference is None:
    display(Markdown(missing_note(reference_path, "drift_baseline")))
else:
    display(Markdown(f"Reference of {reference['n_rows']} rows, {reference['psi_bins']} quantile bins."))
    meta = flatten(reference.get("meta", {}))
    display(pl.DataFrame({"key": list(meta), "value": [str(v) for v in meta.values()]}))
    rows = [
        {
            "feature": name,
            "kind": bins["kind"],
            "bins": len(bins["shares"]),
            "null_share": bins["null_share"],
            "mean": bins.get("mean"),
        }
        for name, bins in ((n, reference["features"][n]) for n in reference["feature_names"])
    ]
    display(pl.DataFrame(rows, infer_schema_length=None))

# %% [markdown]
# ## Score and top features

# %%
if reference is not None:
    display(plot_reference_bins("churn_probability (reference)", reference["score"]))
    for name in reference["feature_names"][:n_features_plotted]:
        display(plot_reference_bins(name, reference["features"][name]))
