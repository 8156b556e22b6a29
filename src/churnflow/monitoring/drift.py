"""Per-column drift: the test each column gets, effect sizes, the null laws calibrated on the reference,
and the correction across features.

Test per column (``monitor.large_window_users`` decides the regime, by the number of distinct users):

* **small window** — p-values of classical tests: two-sample KS for continuous numeric columns, the 2×k
  chi-square for categorical and discrete ones. Rows of one user at several cutoffs are not independent,
  so both use the numbers of *users* as sample sizes (a conservative design effect: the variance of a
  share over clustered rows is at most that of the per-user shares).
* **large window** — an effect size (``monitor.numeric_effect`` / ``monitor.categorical_effect``:
  normalised Wasserstein, PSI or Jensen–Shannon) whose p-value comes from a null law fitted on
  reference-vs-reference splits (:func:`calibrate_null_laws`: random halves of the reference *users*,
  so clustering is in the law), rescaled to the window's size; a column drifts only when that p-value
  survives the correction **and** the effect reaches its floor (``monitor.*_floor``): with tens of
  thousands of rows every tiny difference is "significant", the floor keeps the alarm for differences
  that matter.

The p-values of all features and the score form one family, corrected by ``monitor.correction``
(Benjamini–Hochberg by default). Nothing here reads or writes files.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from churnflow.config.monitor import MonitorConfig
from churnflow.monitoring.profile import ColumnProfile, family_of, padded_counts
from churnflow.monitoring.stats import (
    ScaledChi2,
    adjust_pvalues,
    chi2_test,
    jensen_shannon_rows,
    ks_pvalue,
    ks_statistic_rows,
    psi_rows,
    squared_effect,
    wasserstein_rows,
)

#: Effect sizes computed for every column (NaN where they do not apply).
EFFECT_NAMES: tuple[str, ...] = ("ks", "wasserstein", "psi", "jensenshannon")


@dataclass(frozen=True)
class ColumnDrift:
    """Drift of one column: the test used, its statistic and p-values, effect sizes, and the shares."""

    name: str
    family: str
    kind: str  # numeric | categorical | discrete
    test: str  # ks | chi2 | wasserstein | psi | jensenshannon
    statistic: float
    p_value: float
    p_adjusted: float
    effect: str  # the effect size that carries the floor (large windows) or the one shown (small)
    effect_value: float
    floor: float | None  # large windows only
    drift: bool
    ks: float | None
    wasserstein: float | None  # W1 / reference standard deviation
    psi: float
    jensenshannon: float
    null_share_reference: float
    null_share_current: float
    mean_reference: float | None
    mean_current: float | None
    bin_labels: list[str]
    reference_shares: list[float]
    current_shares: list[float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


# --------------------------------------------------------------------------- all columns at once
@dataclass(frozen=True)
class ProfileMatrix:
    """Padded per-column arrays so that effect sizes of every column are computed in one pass."""

    width: int  # full-layout cells (null + value cells), padded
    coarse_width: int  # null + coarse bins, padded
    support: np.ndarray  # (columns, width - 1) value-cell support, padded with the last value
    coarse_map: np.ndarray  # (columns, width): flat index into (columns, coarse_width)
    std: np.ndarray  # (columns,) reference standard deviation (1 where 0 or undefined)
    continuous: np.ndarray  # (columns,) bool: numeric and not discrete (KS / Wasserstein apply)
    reference: np.ndarray  # (columns, width) reference counts

    @classmethod
    def of(cls, profiles: list[ColumnProfile]) -> ProfileMatrix:
        """Stack ``profiles``."""
        width = max((p.n_cells for p in profiles), default=1) + 1
        coarse_width = max((p.n_coarse for p in profiles), default=1) + 1
        n = len(profiles)
        support = np.zeros((n, width - 1))
        coarse_map = np.zeros((n, width), dtype=np.int64)
        reference = np.zeros((n, width))
        for i, p in enumerate(profiles):
            if p.kind == "numeric":
                s = np.asarray(p.support, dtype=np.float64)
                support[i, : s.size] = s
                support[i, s.size :] = s[-1]
            coarse_map[i, 1 : p.n_cells + 1] = 1 + np.asarray(p.coarse, dtype=np.int64)
            coarse_map[i] += i * coarse_width
            reference[i, : p.n_cells + 1] = p.full_counts()
        std = np.array([p.std if p.std else 1.0 for p in profiles], dtype=np.float64)
        continuous = np.array([p.kind == "numeric" and not p.discrete for p in profiles], dtype=bool)
        return cls(width, coarse_width, support, coarse_map, std, continuous, reference)

    def coarse(self, counts: np.ndarray) -> np.ndarray:
        """(columns, width) cell counts → (columns, coarse_width) coarse counts."""
        n = counts.shape[0]
        flat = np.bincount(self.coarse_map.ravel(), weights=counts.ravel(), minlength=n * self.coarse_width)
        return flat.reshape(n, self.coarse_width)

    def effects(self, ref: np.ndarray, cur: np.ndarray, epsilon: float) -> dict[str, np.ndarray]:
        """Every effect size of every column between two (columns, width) count matrices."""
        ks = np.where(self.continuous, ks_statistic_rows(ref, cur), np.nan)
        has_values = (ref[:, 1:].sum(axis=1) > 0) & (cur[:, 1:].sum(axis=1) > 0)
        w = wasserstein_rows(self.support, ref[:, 1:], cur[:, 1:]) / self.std
        w = np.where(self.continuous, np.where(has_values, w, 0.0), np.nan)
        cref, ccur = self.coarse(ref), self.coarse(cur)
        return {
            "ks": ks,
            "wasserstein": w,
            "psi": psi_rows(cref, ccur, epsilon),
            "jensenshannon": jensen_shannon_rows(cref, ccur),
        }


# ------------------------------------------------------------------------------------- calibration
def _halves(user_codes: np.ndarray, n_users: int, rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
    """A random half of the users (as a row mask) and the two halves' user counts."""
    chosen = np.zeros(n_users, dtype=bool)
    chosen[rng.permutation(n_users)[: n_users // 2]] = True
    return chosen[user_codes], int(chosen.sum()), int(n_users - chosen.sum())


def calibrate_null_laws(
    profiles: list[ColumnProfile], codes: np.ndarray, user_codes: np.ndarray, cfg: MonitorConfig, seed: int
) -> list[ColumnProfile]:
    """Profiles with ``null_laws`` fitted on ``cfg.calibration_splits`` random halves of the users.

    ``codes``: (rows, columns) codes of the reference rows; ``user_codes``: each row's user index
    (0 … users−1). For every split and column the effect sizes between the two halves, squared where
    they are distances and divided by ``1/u_A + 1/u_B`` (users per half), are the sample a
    :class:`ScaledChi2` is fitted to; the same law then gives p-values at any window size.
    """
    n_users = int(user_codes.max()) + 1 if user_codes.size else 0
    if n_users < 4:
        raise ValueError(f"the reference holds {n_users} users; at least 4 are needed to calibrate")
    pm = ProfileMatrix.of(profiles)
    total = padded_counts(codes, pm.width)
    rng = np.random.default_rng(seed)
    samples: dict[str, list[np.ndarray]] = {name: [] for name in EFFECT_NAMES}
    for _ in range(cfg.calibration_splits):
        mask, u_a, u_b = _halves(user_codes, n_users, rng)
        half = padded_counts(codes, pm.width, mask)
        effects = pm.effects(half, total - half, cfg.psi_epsilon)
        size = 1.0 / u_a + 1.0 / u_b
        for name in EFFECT_NAMES:
            samples[name].append(np.asarray(squared_effect(name, effects[name])) / size)
    stacked = {name: np.vstack(values) for name, values in samples.items()}  # (splits, columns)
    out = []
    for i, profile in enumerate(profiles):
        names = EFFECT_NAMES if pm.continuous[i] else ("psi", "jensenshannon")
        laws = {name: ScaledChi2.fit(stacked[name][:, i]) for name in names}
        out.append(replace(profile, null_laws=laws))
    return out


# -------------------------------------------------------------------------------------------- check
def _kind(profile: ColumnProfile) -> str:
    return "discrete" if profile.kind == "numeric" and profile.discrete else profile.kind


def _shares(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return [float(c / total) if total else 0.0 for c in counts]


def _mean(profile: ColumnProfile, counts: np.ndarray) -> float | None:
    """Mean of the non-null values implied by cell counts (support points; numeric only)."""
    if profile.kind != "numeric" or counts[1:].sum() == 0:
        return None
    support = np.asarray(profile.support, dtype=np.float64)
    return float((counts[1 : support.size + 1] * support).sum() / counts[1:].sum())


def column_tests(
    profiles: list[ColumnProfile],
    current: np.ndarray,
    n_ref_users: int,
    n_cur_users: int,
    cfg: MonitorConfig,
) -> list[ColumnDrift]:
    """Test every column of ``current`` ((rows, columns) codes) against its profile; uncorrected.

    The regime is chosen by ``n_cur_users`` (see the module docstring); ``p_adjusted`` and ``drift`` are
    filled by :func:`correct`.
    """
    pm = ProfileMatrix.of(profiles)
    counts = padded_counts(current, pm.width)
    effects = pm.effects(pm.reference, counts, cfg.psi_epsilon)
    large = n_cur_users >= cfg.large_window_users
    out = []
    for i, profile in enumerate(profiles):
        ref_full = pm.reference[i, : profile.n_cells + 1]
        cur_full = counts[i, : profile.n_cells + 1]
        categorical = profile.tests_as_categorical()
        effect = cfg.categorical_effect if categorical else cfg.numeric_effect
        value = float(effects[effect][i])
        floor: float | None = None
        if large:
            law = profile.null_laws.get(effect)
            if law is None:
                raise ValueError(f"drift reference: column {profile.name!r} has no null law for {effect!r}")
            test, statistic = effect, value
            p = law.pvalue(float(squared_effect(effect, value)), n_ref_users, n_cur_users)
            floor = cfg.floor(effect)
        elif categorical:
            test = "chi2"
            statistic, p, _ = chi2_test(ref_full, cur_full, n_ref_users, n_cur_users)
        else:
            test, statistic = "ks", float(effects["ks"][i])
            p = ks_pvalue(statistic, n_ref_users, n_cur_users)
        ref_coarse, cur_coarse = profile.coarse_counts(ref_full), profile.coarse_counts(cur_full)

        def opt(name: str, idx: int = i) -> float | None:
            v = float(effects[name][idx])
            return None if np.isnan(v) else v

        out.append(
            ColumnDrift(
                name=profile.name,
                family=family_of(profile.name),
                kind=_kind(profile),
                test=test,
                statistic=float(statistic),
                p_value=float(p),
                p_adjusted=float(p),
                effect=effect,
                effect_value=value,
                floor=floor,
                drift=False,
                ks=opt("ks"),
                wasserstein=opt("wasserstein"),
                psi=float(effects["psi"][i]),
                jensenshannon=float(effects["jensenshannon"][i]),
                null_share_reference=float(ref_full[0] / max(ref_full.sum(), 1.0)),
                null_share_current=float(cur_full[0] / max(cur_full.sum(), 1.0)),
                mean_reference=_mean(profile, ref_full),
                mean_current=_mean(profile, cur_full),
                bin_labels=profile.coarse_labels(),
                reference_shares=_shares(ref_coarse),
                current_shares=_shares(cur_coarse),
            )
        )
    return out


def correct(columns: list[ColumnDrift], cfg: MonitorConfig) -> list[ColumnDrift]:
    """Adjust the p-values of ``columns`` as one family and decide ``drift`` per column.

    Drift: adjusted p-value < ``cfg.alpha`` and, where the column has a floor (large windows), effect
    size ≥ floor.
    """
    adjusted = adjust_pvalues(np.array([c.p_value for c in columns]), cfg.correction)
    out = []
    for column, p_adj in zip(columns, adjusted, strict=True):
        big_enough = column.floor is None or column.effect_value >= column.floor
        out.append(replace(column, p_adjusted=float(p_adj), drift=bool(p_adj < cfg.alpha and big_enough)))
    return out
