"""Report notebooks: convert percent-format ``notebooks/NN_name.py`` (jupytext), execute them (papermill)
and export HTML (nbconvert, no prompts) that works offline: the template drops the require.js, MathJax
and Mermaid scripts nbconvert's ``lab`` template loads from a CDN (nothing here needs them), and the page
title is the notebook's first heading. Also the small helpers the notebooks use to read inputs that may
not exist yet, and :func:`key_figures` (the headline numbers of ``reports/metrics.json``, whatever its
layout).

Invariant: the executed ``.ipynb`` keeps no run-dependent metadata (papermill timings, temp paths), so the
same inputs and parameters give the same notebook bytes, as far as the notebook's own outputs allow.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: nbconvert's ``lab`` page without the scripts it fetches from a CDN (require.js, MathJax, Mermaid).
OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""
#: Leaf names of ``reports/metrics.json`` shown as key figures (at any depth).
KEY_FIGURE_NAMES: tuple[str, ...] = (
    "roc_auc",
    "pr_auc",
    "ece",
    "brier",
    "threshold",
    "n_rows",
    "positive_rate",
    "mean_probability",
    "model_over_oracle",
    "ratio",
    "net_value_top_k",
    "roi_top_k",
)
#: ``NN_name.py``: two digits, an underscore, lower-case name.
NOTEBOOK_PATTERN = re.compile(r"^\d{2}_[a-z0-9_]+\.py$")
KERNEL_NAME = "python3"
#: Per-user folders Jupyter, IPython and Matplotlib write to; set under a local folder when unset.
HOME_ENV_VARS: dict[str, str] = {
    "IPYTHONDIR": "ipython",
    "JUPYTER_DATA_DIR": "jupyter",
    "MPLCONFIGDIR": "matplotlib",
}


@dataclass(frozen=True)
class NotebookOutput:
    """One executed notebook: its source, the executed ``.ipynb`` and its HTML export."""

    source: Path
    ipynb: Path
    html: Path


def discover_notebooks(notebooks_dir: Path) -> list[Path]:
    """``NN_name.py`` files in ``notebooks_dir``, sorted by name; error if there are none."""
    if not notebooks_dir.is_dir():
        raise FileNotFoundError(f"notebooks folder {notebooks_dir} does not exist")
    found = sorted(p for p in notebooks_dir.iterdir() if NOTEBOOK_PATTERN.match(p.name))
    if not found:
        raise FileNotFoundError(f"no NN_name.py notebooks in {notebooks_dir}")
    return found


def home_env_defaults(cache_dir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The :data:`HOME_ENV_VARS` missing from ``environ``, each pointed at a folder under ``cache_dir``."""
    return {var: str(cache_dir / sub) for var, sub in HOME_ENV_VARS.items() if not environ.get(var)}


def ensure_kernel(kernel_name: str = KERNEL_NAME) -> dict[str, Any]:
    """Kernelspec metadata of ``kernel_name``; installs ipykernel's into ``sys.prefix`` if absent."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        subprocess.run(
            [sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", kernel_name],
            check=True,
            capture_output=True,
        )
        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    return {"name": kernel_name, "display_name": spec.display_name, "language": spec.language}


def convert_notebook(source: Path, kernelspec: Mapping[str, Any]) -> Any:
    """Read a percent-format ``.py`` notebook with jupytext and set its kernel (as ``--set-kernel``)."""
    import jupytext

    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = dict(kernelspec)
    nb.metadata.pop("jupytext", None)
    if not any("parameters" in cell.metadata.get("tags", []) for cell in nb.cells):
        raise ValueError(f"{source}: no cell tagged 'parameters' (# %% tags=[\"parameters\"])")
    return nb


def strip_run_metadata(nb: Any) -> Any:
    """Drop papermill timings/paths, per-cell execution times and random cell ids (re-runs → same bytes)."""
    papermill_meta = nb.metadata.get("papermill", {})
    nb.metadata["papermill"] = {"parameters": papermill_meta.get("parameters", {})}
    for index, cell in enumerate(nb.cells):
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        cell["id"] = f"cell-{index:03d}"  # jupytext and papermill draw random ids
    return nb


def notebook_title(nb: Any, fallback: str) -> str:
    """The text of the notebook's first Markdown heading (``# …``), else ``fallback``."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in str(cell.source).splitlines():
            if line.startswith("#"):
                return line.lstrip("#").strip() or fallback
    return fallback


def export_html(nb: Any, title: str) -> str:
    """Offline HTML of an executed notebook titled ``title``, without input/output prompts."""
    import jinja2
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        extra_loaders=[jinja2.DictLoader({"churnflow_offline.html.j2": OFFLINE_TEMPLATE})],
        template_file="churnflow_offline.html.j2",
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return str(body)


def run_notebook(
    source: Path,
    out_dir: Path,
    parameters: Mapping[str, Any],
    kernelspec: Mapping[str, Any],
    cwd: Path,
    progress: bool = True,
) -> NotebookOutput:
    """Convert, execute (papermill; a cell progress bar on a terminal) and export one notebook to ``out_dir``.

    Raises papermill's ``PapermillExecutionError`` (naming the failing cell) if the notebook fails.
    """
    import nbformat
    import papermill

    nb = convert_notebook(source, kernelspec)
    ipynb = out_dir / f"{source.stem}.ipynb"
    with tempfile.TemporaryDirectory(prefix="churnflow-nb-") as tmp:
        raw = Path(tmp) / ipynb.name
        nbformat.write(nb, raw)
        executed = papermill.execute_notebook(
            raw,
            Path(tmp) / f"executed-{ipynb.name}",
            parameters=dict(parameters),
            kernel_name=str(kernelspec["name"]),
            progress_bar=progress and sys.stderr.isatty(),  # DVC logs: no carriage-return redraws
            cwd=str(cwd),
        )
    executed = strip_run_metadata(executed)
    nbformat.write(executed, ipynb)
    html = out_dir / f"{source.stem}.html"
    html.write_text(export_html(executed, f"churnflow · {notebook_title(executed, source.stem)}"))
    return NotebookOutput(source=source, ipynb=ipynb, html=html)


def run_notebooks(
    sources: list[Path],
    out_dir: Path,
    parameters: Mapping[str, Any],
    kernelspec: Mapping[str, Any],
    cwd: Path,
    jobs: int = 1,
    on_done: Callable[[NotebookOutput], None] | None = None,
) -> list[NotebookOutput]:
    """Run every notebook into ``out_dir``, ``jobs`` at a time (each in its own process and kernel; they
    read the same inputs and write different files, so any ``jobs`` gives the same bytes). Returns the
    outputs in ``sources`` order; the first failure is raised once the running ones finish."""
    if jobs <= 1 or len(sources) <= 1:
        done = []
        for source in sources:
            done.append(run_notebook(source, out_dir, parameters, kernelspec, cwd))
            if on_done is not None:
                on_done(done[-1])
        return done
    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold threads
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {
            pool.submit(run_notebook, source, out_dir, dict(parameters), dict(kernelspec), cwd, False): source
            for source in sources
        }
        for future in as_completed(futures):
            if on_done is not None and future.exception() is None:
                on_done(future.result())
        return [next(f for f, src in futures.items() if src == source).result() for source in sources]


# ------------------------------------------------------------------------ helpers used inside notebooks
def missing_note(path: str | Path, producer: str) -> str:
    """Markdown note shown in place of a section whose input ``path`` is absent."""
    return f"> **Not available yet:** `{path}` is absent — run `{producer}` stage (`dvc repro {producer}`)."


def read_json_or_none(path: str | Path) -> dict[str, Any] | None:
    """Parsed JSON of ``path``, or ``None`` if the file is absent; a malformed file raises naming it."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err


def flatten(payload: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict → ``{"a.b": value}`` (lists kept as values), for showing JSON reports as tables."""
    flat: dict[str, Any] = {}
    for key, value in payload.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def key_figures(metrics: Mapping[str, Any], names: tuple[str, ...] = KEY_FIGURE_NAMES) -> dict[str, float]:
    """Numbers of ``metrics`` whose leaf name is one of ``names``, by dotted path (any nesting), so the
    notebook and its test read whatever layout ``reports/metrics.json`` has."""
    return {
        path: float(value)
        for path, value in flatten(metrics).items()
        if path.rsplit(".", 1)[-1] in names and isinstance(value, int | float) and not isinstance(value, bool)
    }


def environ_with(defaults: Mapping[str, str]) -> None:
    """Apply ``defaults`` to ``os.environ`` and create those folders (only keys not already set)."""
    for var, value in defaults.items():
        os.environ.setdefault(var, value)
        Path(os.environ[var]).mkdir(parents=True, exist_ok=True)
