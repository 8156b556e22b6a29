# %% [markdown]
# # 04 · Model evaluation
# Out-of-time test metrics (`reports/metrics.json`), the figures under `reports/figures/` and a link to the
# full evaluation report (`reports/evaluation.html`).

# %% tags=["parameters"]
reports_dir = "reports"
artifacts_dir = "artifacts"
params_path = "params.yaml"

# %%
# %matplotlib inline
from pathlib import Path

import polars as pl
from IPython.display import HTML, Image, Markdown, display

from churnflow.reports.notebooks import flatten, key_figures, missing_note, read_json_or_none

pl.Config.set_tbl_rows(60)
pl.Config.set_fmt_str_lengths(120)

metrics_path = Path(reports_dir) / "metrics.json"
figures_dir = Path(reports_dir) / "figures"
evaluation_html = Path(reports_dir) / "evaluation.html"
metrics = read_json_or_none(metrics_path)

# %% [markdown]
# ## Key figures
# The headline numbers of `reports/metrics.json` (every ROC-AUC, PR-AUC, ECE, threshold, row count, oracle
# ratio and business value it holds, whatever the nesting), to 4 decimals.

# %%
if metrics is None:
    display(Markdown(missing_note(metrics_path, "evaluate")))
else:
    headline = key_figures(metrics)
    rows = "".join(
        f'<tr data-key="{path}"><td>{path}</td><td class="value">{value:.4f}</td></tr>'
        for path, value in headline.items()
    )
    display(HTML(f'<table class="key-figures"><tr><th>metric</th><th>value</th></tr>{rows}</table>'))

# %% [markdown]
# ## All metrics

# %%
if metrics is not None:
    flat = flatten(metrics)
    display(pl.DataFrame({"metric": list(flat), "value": [str(v) for v in flat.values()]}))

# %% [markdown]
# ## Figures

# %%
figures = sorted(figures_dir.glob("*.png")) if figures_dir.is_dir() else []
if not figures:
    display(Markdown(missing_note(figures_dir, "evaluate")))
for figure in figures:
    display(Markdown(f"### {figure.stem}"))
    display(Image(filename=str(figure)))

# %% [markdown]
# ## Full evaluation report

# %%
if evaluation_html.is_file():
    display(Markdown(f"The full evaluation report: [{evaluation_html.name}](../{evaluation_html.name})."))
else:
    display(Markdown(missing_note(evaluation_html, "evaluate")))
