# %% [markdown]
# # 01 · Data quality
# What the `load` stage read, kept and quarantined (`reports/quality.json`, `artifacts/quarantine.jsonl`).

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

quality_path = Path(reports_dir) / "quality.json"
quarantine_path = Path(artifacts_dir) / "quarantine.jsonl"
quality = read_json_or_none(quality_path)

# %% [markdown]
# ## Counts

# %%
if quality is None:
    display(Markdown(missing_note(quality_path, "load")))
else:
    scalars = {k: v for k, v in flatten(quality).items() if not isinstance(v, list)}
    counts = pl.DataFrame({"key": list(scalars), "value": [str(v) for v in scalars.values()]})
    display(counts.filter(~pl.col("key").str.contains(r"^(files|reasons|unknown_pages)\.")))

# %% [markdown]
# ## Quarantine reasons and per-file counts

# %%
if quality is not None:
    reasons = quality.get("reasons") or {}
    if reasons:
        frame = pl.DataFrame({"reason": list(reasons), "count": list(reasons.values())})
        display(frame.sort("count", descending=True))
        ax = frame.sort("count").to_pandas().plot.barh(x="reason", y="count", legend=False)
        ax.set_title("Quarantined lines by reason")
    else:
        display(Markdown("No line was quarantined."))
    files = quality.get("files") or {}
    if files:
        display(pl.DataFrame([{"file": name, **counts} for name, counts in files.items()]))

# %% [markdown]
# ## First quarantined lines

# %%
if not quarantine_path.is_file():
    display(Markdown(missing_note(quarantine_path, "load")))
elif quarantine_path.stat().st_size == 0:
    display(Markdown("The quarantine file is empty."))
else:
    display(pl.read_ndjson(quarantine_path, n_rows=20, infer_schema_length=20))
