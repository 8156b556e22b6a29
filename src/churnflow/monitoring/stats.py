"""Drift statistics on count vectors over a fixed support (pure numpy/scipy, no I/O).

Every column of the monitor is reduced to counts over cells that the *reference* fixes: a numeric column
to counts per support point (each value floored to the largest support point ≤ it) plus a null count, a
categorical one to counts per category (``__other__`` included) plus a null count. Both samples are
counted over the same cells, so every statistic below is a function of two count vectors:

* ``ks_statistic`` — two-sample Kolmogorov–Smirnov D over the cells (nulls sort first); equals
  ``scipy.stats.ks_2samp(a, b).statistic`` when the support holds every value of both samples;
* ``ks_pvalue`` — Smirnov's asymptotic law, as ``ks_2samp(method="asymp")``:
  ``kstwo.sf(D, round(n·m/(n+m)))``, with the sizes the caller passes (effective sizes, see
  docs/monitoring.md);
* ``chi2_test`` — the 2×k contingency chi-square (no continuity correction) as
  ``scipy.stats.chi2_contingency(correction=False)``, on counts scaled to the effective sizes and with
  sparse cells pooled;
* ``psi`` — Σ (q − p)·ln(q / p), shares floored at ε; ``jensen_shannon`` — the distance (base 2, in
  [0, 1]) as ``scipy.spatial.distance.jensenshannon(p, q, base=2)``; ``wasserstein`` — W1 between the
  two non-null distributions as ``scipy.stats.wasserstein_distance`` with the cell counts as weights;
* ``adjust_pvalues`` — Benjamini–Hochberg (as ``scipy.stats.false_discovery_control``), Bonferroni or
  none;
* ``ScaledChi2`` — a null law ``g ≈ (1/n + 1/m) · a · χ²_ν`` fitted by moments (Satterthwaite) to
  reference-vs-reference values of an effect size, used to turn an effect size into a p-value at any
  window size.

Vectorised variants (``*_rows``) take 2-D arrays with one column per row: the reference calibration runs
them over every feature at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

#: Correction methods across features.
CORRECTIONS: tuple[str, ...] = ("bh", "bonferroni", "none")
#: Effect sizes the monitor knows.
EFFECTS: tuple[str, ...] = ("psi", "jensenshannon", "wasserstein")
#: A chi-square cell needs at least this expected count; sparser cells are pooled.
MIN_EXPECTED = 5.0


def _as2d(x: np.ndarray) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    return arr[None, :] if arr.ndim == 1 else arr


def _shares(counts: np.ndarray) -> np.ndarray:
    c = _as2d(counts)
    total = c.sum(axis=1, keepdims=True)
    return np.divide(c, total, out=np.zeros_like(c), where=total > 0)


# ------------------------------------------------------------------------------------------ KS / chi2
def ks_statistic_rows(ref_counts: np.ndarray, cur_counts: np.ndarray) -> np.ndarray:
    """KS D per row: the largest gap between the two cumulative shares over ordered cells."""
    gap = np.abs(np.cumsum(_shares(ref_counts), axis=1) - np.cumsum(_shares(cur_counts), axis=1))
    return gap.max(axis=1) if gap.shape[1] else np.zeros(gap.shape[0])


def ks_statistic(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """KS D between two count vectors over the same ordered cells."""
    return float(ks_statistic_rows(ref_counts, cur_counts)[0])


def ks_pvalue(d: float, n_ref: float, n_cur: float) -> float:
    """Two-sided asymptotic p-value of D for sample sizes ``n_ref``, ``n_cur`` (as scipy's ``asymp``)."""
    if n_ref <= 0 or n_cur <= 0:
        return 1.0
    m, n = sorted((float(n_ref), float(n_cur)), reverse=True)
    en = max(round(m * n / (m + n)), 1)
    return float(np.clip(sps.kstwo.sf(d, en), 0.0, 1.0))


def pool_sparse(ref: np.ndarray, cur: np.ndarray, min_expected: float = MIN_EXPECTED) -> np.ndarray:
    """A 2×k' table from two count vectors: empty cells dropped, cells whose expected count (under
    homogeneity) is below ``min_expected`` in either row pooled into one cell."""
    table = np.vstack([np.asarray(ref, dtype=np.float64), np.asarray(cur, dtype=np.float64)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] == 0:
        return table
    rows = table.sum(axis=1, keepdims=True)
    expected = rows * table.sum(axis=0, keepdims=True) / table.sum()
    sparse = (expected < min_expected).any(axis=0)
    if sparse.any():
        pooled = table[:, sparse].sum(axis=1, keepdims=True)
        table = np.hstack([table[:, ~sparse], pooled])
    return table


def chi2_test(
    ref_counts: np.ndarray, cur_counts: np.ndarray, n_ref: float, n_cur: float
) -> tuple[float, float, int]:
    """Chi-square test of homogeneity of two count vectors: (statistic, p-value, degrees of freedom).

    Each row is first rescaled to its effective size (``n_ref``, ``n_cur``): with clustered rows (the same
    user at several cutoffs) the rows counts overstate the information (Rao–Scott's first-order
    correction divides the statistic by the design effect, which this is). Sparse cells are pooled.
    """
    ref = np.asarray(ref_counts, dtype=np.float64)
    cur = np.asarray(cur_counts, dtype=np.float64)
    if ref.sum() <= 0 or cur.sum() <= 0:
        return 0.0, 1.0, 0
    table = pool_sparse(ref * (n_ref / ref.sum()), cur * (n_cur / cur.sum()))
    if table.shape[1] < 2:
        return 0.0, 1.0, 0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    stat = float(((table - expected) ** 2 / expected).sum())
    dof = table.shape[1] - 1
    return stat, float(sps.chi2.sf(stat, dof)), dof


# ------------------------------------------------------------------------------------------- effects
def psi_rows(ref_counts: np.ndarray, cur_counts: np.ndarray, epsilon: float) -> np.ndarray:
    """PSI per row, shares floored at ``epsilon`` (≥ 0; 0 for identical shares)."""
    p = np.maximum(_shares(ref_counts), epsilon)
    q = np.maximum(_shares(cur_counts), epsilon)
    return np.maximum((q - p) * np.log(q / p), 0.0).sum(axis=1)


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray, epsilon: float) -> float:
    """Population stability index of two count (or share) vectors."""
    ref, cur = np.asarray(ref_counts), np.asarray(cur_counts)
    if ref.shape != cur.shape:
        raise ValueError(f"PSI needs aligned cells, got {ref.shape} and {cur.shape}")
    return float(psi_rows(ref, cur, epsilon)[0])


def jensen_shannon_rows(ref_counts: np.ndarray, cur_counts: np.ndarray) -> np.ndarray:
    """Jensen–Shannon distance (base 2) per row, in [0, 1]."""
    p, q = _shares(ref_counts), _shares(cur_counts)
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> np.ndarray:
        ratio = np.divide(a, m, out=np.ones_like(a), where=(a > 0) & (m > 0))
        return (a * np.log2(ratio)).sum(axis=1)

    return np.sqrt(np.clip(0.5 * (kl(p) + kl(q)), 0.0, 1.0))


def jensen_shannon(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2) of two count vectors."""
    return float(jensen_shannon_rows(ref_counts, cur_counts)[0])


def wasserstein_rows(support: np.ndarray, ref_counts: np.ndarray, cur_counts: np.ndarray) -> np.ndarray:
    """W1 per row between two distributions on the same sorted ``support`` (last axis = support)."""
    s = np.asarray(support, dtype=np.float64)
    gap = np.abs(np.cumsum(_shares(ref_counts), axis=1) - np.cumsum(_shares(cur_counts), axis=1))
    if s.shape[-1] < 2:
        return np.zeros(gap.shape[0])
    widths = np.diff(s, axis=-1)
    return (gap[:, :-1] * widths).sum(axis=1)


def wasserstein(support: np.ndarray, ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """W1 between two count vectors on the same sorted ``support``."""
    return float(wasserstein_rows(support, ref_counts, cur_counts)[0])


# ------------------------------------------------------------------------------------------ multiple
def adjust_pvalues(pvalues: np.ndarray, method: str) -> np.ndarray:
    """P-values adjusted across a family: ``bh`` (Benjamini–Hochberg step-up), ``bonferroni``, ``none``."""
    p = np.asarray(pvalues, dtype=np.float64)
    if method not in CORRECTIONS:
        raise ValueError(f"monitor.correction must be one of {CORRECTIONS}, got {method!r}")
    if p.size == 0 or method == "none":
        return p.copy()
    if method == "bonferroni":
        return np.minimum(p * p.size, 1.0)
    order = np.argsort(p, kind="stable")
    ranked = p[order] * p.size / np.arange(1, p.size + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty_like(p)
    out[order] = np.minimum(adjusted, 1.0)
    return out


# ----------------------------------------------------------------------------------------- null laws
@dataclass(frozen=True)
class ScaledChi2:
    """Null law of a (squared) effect size ``g``: ``g / (1/n_ref + 1/n_cur) ≈ scale · χ²_df``.

    Fitted by moments to reference-vs-reference values (Satterthwaite). ``scale == 0`` means the
    reference never varied (a constant column): any non-zero ``g`` then has p-value 0.
    """

    scale: float
    df: float

    @classmethod
    def fit(cls, values: np.ndarray) -> ScaledChi2:
        """Moment fit to ``values`` (already divided by 1/n + 1/m of their split sizes)."""
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        mean = float(v.mean()) if v.size else 0.0
        var = float(v.var(ddof=1)) if v.size > 1 else 0.0
        if mean <= 0.0:
            return cls(scale=0.0, df=1.0)
        if var <= 0.0:
            return cls(scale=mean, df=1.0)  # degenerate spread: a χ²₁ with the right mean (wide tail)
        return cls(scale=var / (2.0 * mean), df=max(2.0 * mean * mean / var, 0.5))

    def pvalue(self, g: float, n_ref: float, n_cur: float) -> float:
        """P(G ≥ g) for windows of sizes ``n_ref`` and ``n_cur``."""
        if self.scale <= 0.0:
            return 1.0 if g <= 0.0 else 0.0
        size = 1.0 / max(n_ref, 1.0) + 1.0 / max(n_cur, 1.0)
        return float(sps.chi2.sf(g / (size * self.scale), self.df))

    def quantile(self, level: float, n_ref: float, n_cur: float) -> float:
        """The ``level`` quantile of G for windows of sizes ``n_ref`` and ``n_cur``."""
        size = 1.0 / max(n_ref, 1.0) + 1.0 / max(n_cur, 1.0)
        return float(size * self.scale * sps.chi2.ppf(level, self.df))

    def to_dict(self) -> dict[str, float]:
        """JSON form."""
        return {"scale": self.scale, "df": self.df}


def squared_effect(name: str, value: float | np.ndarray) -> float | np.ndarray:
    """The quantity whose null is χ²-like: PSI itself, the square of a distance (JS, W1, KS)."""
    return value if name == "psi" else np.square(value)
