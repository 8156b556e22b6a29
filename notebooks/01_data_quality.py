# %% [markdown]
# # 01 · Data quality
# What the `load` stage read, kept and quarantined (`reports/quality.json`, `artifacts/quarantine.jsonl`),
# and what the kept events look like: volume by day and the page mix (`artifacts/events.parquet`).

# %% tags=["parameters"]
reports_dir = "reports"
artifacts_dir = "artifacts"
params_path = "params.yaml"

# %%
# %matplotlib inline
from pathlib import Path

import matplotlib.pyplot as plt
import polars as pl
from IPython.display import Markdown, display

from churnflow.reports.notebooks import flatten, missing_note, read_json_or_none

pl.Config.set_tbl_rows(60)
pl.Config.set_fmt_str_lengths(120)

quality_path = Path(reports_dir) / "quality.json"
quarantine_path = Path(artifacts_dir) / "quarantine.jsonl"
events_path = Path(artifacts_dir) / "events.parquet"
quality = read_json_or_none(quality_path)

# %% [markdown]
# ## Quality report

# %%
if quality is None:
    display(Markdown(missing_note(quality_path, "load")))
else:
    scalars = {k: v for k, v in flatten(quality).items() if not isinstance(v, list | dict)}
    headline = {k: scalars[k] for k in ("lines_read", "loaded", "quarantined", "duplicates") if k in scalars}
    if headline:
        display(Markdown(" · ".join(f"**{k.replace('_', ' ')}**: {v:,}" for k, v in headline.items())))
    counts = pl.DataFrame({"key": list(scalars), "value": [str(v) for v in scalars.values()]})
    display(counts.filter(~pl.col("key").str.contains(r"^(files|reasons|unknown_pages)\.")))

# %% [markdown]
# ## Quarantine reasons and per-file counts

# %%
if quality is not None:
    reasons = {k: v for k, v in (quality.get("reasons") or {}).items() if v}
    if reasons:
        frame = pl.DataFrame({"reason": list(reasons), "count": list(reasons.values())})
        display(frame.sort("count", descending=True))
        fig, ax = plt.subplots(figsize=(7, 0.4 * len(reasons) + 1.2))
        ordered = frame.sort("count")
        ax.barh(ordered["reason"].to_list(), ordered["count"].to_list(), color="#c62828")
        ax.set_title("Quarantined lines by reason")
        plt.show()
    else:
        total = quality.get("lines_read") or quality.get("loaded")
        display(
            Markdown(
                f"No line was quarantined{f' out of {total:,} read' if total else ''}: every line passed."
            )
        )
    files = quality.get("files") or {}
    if files:
        display(pl.DataFrame([{"file": name, **counts} for name, counts in files.items()]))

# %% [markdown]
# ## Volume by day and page mix

# %%
if not events_path.is_file():
    display(Markdown(missing_note(events_path, "load")))
else:
    events = pl.read_parquet(events_path, columns=["user_id", "ts", "page"])
    daily = (
        events.group_by(pl.col("ts").dt.truncate("1d").alias("day"))
        .agg(events=pl.len(), users=pl.col("user_id").n_unique())
        .sort("day")
    )
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.plot(daily["day"].to_list(), daily["events"].to_list(), color="#5b7c99", label="events")
    ax.set_ylabel("events per day")
    ax2 = ax.twinx()
    ax2.plot(daily["day"].to_list(), daily["users"].to_list(), color="#e07b24", label="active users")
    ax2.set_ylabel("active users per day")
    ax.set_title(f"Volume by day: {events.height:,} events of {events['user_id'].n_unique():,} users")
    fig.legend(loc="upper right")
    plt.show()
    pages = (
        events.group_by(pl.col("page").cast(pl.String))
        .agg(events=pl.len())
        .with_columns(share=pl.col("events") / pl.col("events").sum())
        .sort(["events", "page"], descending=[True, False])  # ties (Cancel, its Confirmation) by name
    )
    fig, ax = plt.subplots(figsize=(8, 0.28 * pages.height + 1.2))
    ordered = pages.reverse()
    ax.barh(ordered["page"].to_list(), ordered["share"].to_list(), color="#5b7c99")
    ax.set_xscale("log")
    ax.set_xlabel("share of events (log scale)")
    ax.set_title("Page mix")
    plt.show()
    display(pages)

# %% [markdown]
# ## First quarantined lines

# %%
if not quarantine_path.is_file():
    display(Markdown(missing_note(quarantine_path, "load")))
elif quarantine_path.stat().st_size == 0:
    display(Markdown("The quarantine file is empty."))
else:
    display(pl.read_ndjson(quarantine_path, n_rows=20, infer_schema_length=20))
