"""Column profiles: how the reference summarises one column, and how any sample is counted over it.

A profile fixes the *cells* every later sample is counted over (so bins never move between windows):

* **numeric**: up to ``monitor.sketch_points`` support points — every distinct value when there are that
  few (exact), else the reference quantiles at evenly spaced levels, min and max included (a sketch). A
  value is counted at the largest support point ≤ it (values below the minimum at the minimum). Columns
  with at most ``monitor.discrete_max_values`` distinct values are marked ``discrete`` and get the
  categorical tests. Coarse bins (``monitor.psi_bins`` reference quantiles, right-closed, open-ended)
  group the cells for PSI, Jensen–Shannon and the online score.
* **categorical** (string columns): the ``monitor.max_categories`` most frequent values, then
  ``__other__``; coarse bins are the cells themselves.

Counts use the *full layout* ``[null, cell_1, …, cell_C]``: null, NaN and ±inf count as null, first, so a
column that starts arriving empty drifts even when its values do not. Codes per row use the same layout
(0 = null, j = cell j), in ``uint8`` (C ≤ 254).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from churnflow.config.monitor import MonitorConfig
from churnflow.monitoring.stats import ScaledChi2

#: Bucket for categorical values outside the reference's most frequent ones.
OTHER_CATEGORY = "__other__"
KINDS: tuple[str, ...] = ("numeric", "categorical")


class DriftInputError(ValueError):
    """Bad input to the monitor; the message names the field or column at fault."""


def family_of(name: str) -> str:
    """The feature family: the part of ``family__short_name`` before the double underscore."""
    return name.split("__", 1)[0] if "__" in name else "other"


@dataclass
class ColumnProfile:
    """The reference summary of one column (see the module docstring for the cells)."""

    name: str
    kind: str
    discrete: bool
    support: list[Any]  # numeric: sorted float support points; categorical: category strings
    counts: list[float]  # reference rows per cell (categorical: categories, then __other__)
    null_count: float
    coarse: list[int]  # coarse bin of each cell
    edges: list[float]  # numeric: right-closed coarse edges (len = coarse bins - 1); categorical: []
    mean: float | None
    std: float | None
    null_laws: dict[str, ScaledChi2] = field(default_factory=dict)

    @property
    def n_cells(self) -> int:
        """Value cells (the null cell not counted)."""
        return len(self.counts)

    @property
    def n_coarse(self) -> int:
        """Coarse value bins (the null bin not counted)."""
        return (max(self.coarse) + 1) if self.coarse else 1

    def full_counts(self) -> np.ndarray:
        """Reference counts in the full layout ``[null, cells…]``."""
        return np.asarray([self.null_count, *self.counts], dtype=np.float64)

    def coarse_counts(self, full: np.ndarray) -> np.ndarray:
        """Full-layout cell counts → ``[null, coarse bins…]`` counts."""
        full = np.asarray(full, dtype=np.float64)
        out = np.zeros(self.n_coarse + 1)
        out[0] = full[0]
        np.add.at(out, 1 + np.asarray(self.coarse, dtype=np.int64), full[1:])
        return out

    def tests_as_categorical(self) -> bool:
        """Categorical columns and discrete numeric ones get chi-square / Jensen–Shannon."""
        return self.kind == "categorical" or self.discrete

    def coarse_labels(self) -> list[str]:
        """Readable labels of ``[null, coarse bins…]``."""
        if self.kind == "categorical":
            return ["null", *[str(s) for s in self.support], OTHER_CATEGORY]
        if self.discrete:
            return ["null", *[f"{v:.4g}" for v in self.support]]
        bounds = ["-inf", *[f"{e:.4g}" for e in self.edges], "inf"]
        return ["null", *[f"({lo}, {hi}]" for lo, hi in itertools.pairwise(bounds)]]

    def to_dict(self) -> dict[str, Any]:
        """JSON form (floats kept exactly)."""
        return {
            "kind": self.kind,
            "discrete": self.discrete,
            "support": list(self.support),
            "counts": [float(c) for c in self.counts],
            "null_count": float(self.null_count),
            "coarse": [int(c) for c in self.coarse],
            "edges": [float(e) for e in self.edges],
            "mean": self.mean,
            "std": self.std,
            "null_laws": {k: v.to_dict() for k, v in sorted(self.null_laws.items())},
        }

    @classmethod
    def from_dict(cls, name: str, raw: dict[str, Any]) -> ColumnProfile:
        """Inverse of :meth:`to_dict`; names the missing key."""
        needed = ("kind", "discrete", "support", "counts", "null_count", "coarse", "edges")
        for key in needed:
            if key not in raw:
                raise DriftInputError(f"drift reference: column {name!r} lacks {key!r}")
        if raw["kind"] not in KINDS:
            raise DriftInputError(f"drift reference: column {name!r} has unknown kind {raw['kind']!r}")
        if len(raw["coarse"]) != len(raw["counts"]):
            raise DriftInputError(f"drift reference: column {name!r}: 'coarse' and 'counts' differ in length")
        laws = {k: ScaledChi2(float(v["scale"]), float(v["df"])) for k, v in raw.get("null_laws", {}).items()}
        return cls(
            name=name,
            kind=str(raw["kind"]),
            discrete=bool(raw["discrete"]),
            support=list(raw["support"]),
            counts=[float(c) for c in raw["counts"]],
            null_count=float(raw["null_count"]),
            coarse=[int(c) for c in raw["coarse"]],
            edges=[float(e) for e in raw["edges"]],
            mean=raw.get("mean"),
            std=raw.get("std"),
            null_laws=laws,
        )


# ------------------------------------------------------------------------------------------ building
def _is_numeric(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or dtype == pl.Boolean


def numeric_values(series: pl.Series) -> np.ndarray:
    """float64 values with null, NaN and ±inf as NaN."""
    values = series.cast(pl.Float64).to_numpy().astype(np.float64, copy=True)
    values[~np.isfinite(values)] = np.nan
    return values


def _coarse_edges(support: np.ndarray, counts: np.ndarray, n_bins: int) -> np.ndarray:
    """Right-closed edges at the reference quantiles 1/k … (k−1)/k, chosen among the support points."""
    cum = np.cumsum(counts) / counts.sum()
    levels = np.arange(1, n_bins) / n_bins
    idx = np.searchsorted(cum, levels - 1e-12, side="left")
    idx = np.unique(np.clip(idx, 0, support.size - 1))
    return support[idx[idx < support.size - 1]]  # an edge at the maximum would leave an empty last bin


def profile_column(series: pl.Series, cfg: MonitorConfig) -> ColumnProfile:
    """The profile of one reference column (null laws are added later by the calibration)."""
    if series.len() == 0:
        raise DriftInputError(f"column {series.name!r}: no rows to build a reference from")
    if _is_numeric(series.dtype):
        values = numeric_values(series)
        finite = np.sort(values[~np.isnan(values)])
        n_null = float(values.size - finite.size)
        if finite.size == 0:
            support, counts = np.array([0.0]), np.array([0.0])
        else:
            uniq, cnt = np.unique(finite, return_counts=True)
            if uniq.size <= cfg.sketch_points:
                support, counts = uniq, cnt.astype(np.float64)
            else:
                levels = np.linspace(0.0, 1.0, cfg.sketch_points)
                support = np.unique(np.quantile(finite, levels, method="inverted_cdf"))
                cells = np.clip(np.searchsorted(support, finite, side="right") - 1, 0, support.size - 1)
                counts = np.bincount(cells, minlength=support.size).astype(np.float64)
        discrete = bool(support.size <= cfg.discrete_max_values)
        if discrete or counts.sum() == 0:
            coarse = np.arange(support.size)
            edges = support[:-1]
        else:
            edges = _coarse_edges(support, counts, cfg.psi_bins)
            coarse = np.searchsorted(edges, support, side="left")
        return ColumnProfile(
            name=series.name,
            kind="numeric",
            discrete=discrete,
            support=[float(s) for s in support],
            counts=[float(c) for c in counts],
            null_count=n_null,
            coarse=[int(c) for c in coarse],
            edges=[float(e) for e in edges],
            mean=float(finite.mean()) if finite.size else None,
            std=float(finite.std()) if finite.size else None,
        )
    text = series.cast(pl.String)
    present = text.drop_nulls()
    freq = present.value_counts(name="count").sort(["count", text.name], descending=[True, False])
    categories = [str(c) for c in freq[text.name].head(cfg.max_categories).to_list()]
    known = dict(zip(freq[text.name].to_list(), freq["count"].to_list(), strict=True))
    counts = [float(known.get(c, 0)) for c in categories]
    counts.append(float(present.len() - sum(counts)))
    return ColumnProfile(
        name=series.name,
        kind="categorical",
        discrete=True,
        support=categories,
        counts=counts,
        null_count=float(text.null_count()),
        coarse=list(range(len(counts))),
        edges=[],
        mean=None,
        std=None,
    )


# ------------------------------------------------------------------------------------------ counting
def column_codes(series: pl.Series, profile: ColumnProfile) -> np.ndarray:
    """Per row: 0 for null, else 1 + the cell index (see the module docstring), as uint8."""
    if profile.kind == "numeric":
        if not _is_numeric(series.dtype):
            raise DriftInputError(
                f"column {series.name!r}: the reference is numeric, got dtype {series.dtype}"
            )
        values = numeric_values(series)
        support = np.asarray(profile.support, dtype=np.float64)
        cells = np.clip(np.searchsorted(support, values, side="right") - 1, 0, support.size - 1)
        return np.where(np.isnan(values), 0, cells + 1).astype(np.uint8)
    text = series.cast(pl.String)
    lookup = {c: i + 1 for i, c in enumerate(profile.support)}
    other = len(profile.support) + 1
    codes = [0 if v is None else lookup.get(v, other) for v in text.to_list()]
    return np.asarray(codes, dtype=np.uint8)


def code_matrix(frame: pl.DataFrame, profiles: list[ColumnProfile]) -> np.ndarray:
    """(rows, columns) uint8 codes of ``frame`` over ``profiles``; names a missing column."""
    missing = [p.name for p in profiles if p.name not in frame.columns]
    if missing:
        raise DriftInputError(f"feature column(s) missing from the frame: {missing[:10]}")
    if not profiles:
        return np.zeros((frame.height, 0), dtype=np.uint8)
    return np.column_stack([column_codes(frame[p.name], p) for p in profiles])


def full_counts_of(codes: np.ndarray, profile: ColumnProfile) -> np.ndarray:
    """Counts in the full layout from one column of codes."""
    return np.bincount(codes.astype(np.int64), minlength=profile.n_cells + 1)[: profile.n_cells + 1].astype(
        np.float64
    )


def padded_counts(codes: np.ndarray, width: int, mask: np.ndarray | None = None) -> np.ndarray:
    """(columns, width) counts of every column of ``codes`` at once (rows where ``mask``)."""
    rows = codes if mask is None else codes[mask]
    n_cols = codes.shape[1]
    flat = rows.astype(np.int64) + np.arange(n_cols, dtype=np.int64) * width
    return np.bincount(flat.ravel(), minlength=n_cols * width).reshape(n_cols, width).astype(np.float64)
