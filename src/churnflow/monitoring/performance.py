"""Label-free performance estimate (confidence-based, as NannyML's CBPE) and realised performance.

**Assumption: no concept drift.** The probabilities are calibrated, so a row scored p churns with
probability p — also in a window whose inputs drifted, as long as P(churn | features) did not change.
The model ships a calibrator fitted on validation rows; as NannyML's CBPE does, the monitor also
fits its own (:func:`fit_platt`) on the reference's out-of-sample, labelled score rows, so a
miscalibration the model already had on the reference is not reported later as a change. Then the
labels of an unlabelled window are Bernoulli(p) draws and, without any label:

* the **expected confusion matrix** at threshold t: TP = Σ_{p≥t} p, FP = Σ_{p≥t} (1 − p),
  FN = Σ_{p<t} p, TN = Σ_{p<t} (1 − p);
* the **estimated ROC-AUC**: E[concordant pairs] / E[positive–negative pairs] =
  Σ_{i≠j} p_i (1 − p_j) [s_i > s_j] (+ ½ for ties) / Σ_{i≠j} p_i (1 − p_j);
* a **predictive band**: ``monitor.performance_draws`` label vectors drawn from the scores give the
  distribution the realised AUC and churn count would have if the assumption held.

When labels arrive, the realised AUC and churn count are tested against that band (one-sided for the AUC:
concept drift lowers it; two-sided for the churn count, whose law is Poisson-binomial): a realised value
outside it means the assumption broke — the concept drifted — which covariate tests cannot see.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from churnflow.config.evaluate import EvaluateConfig

#: Fewer labelled reference rows of either class than this: no monitor-side recalibration.
MIN_CLASS_ROWS = 10
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(q / (1 - q))


def fit_platt(p: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """``sigmoid(slope · logit(p) + intercept)`` fitted by maximum likelihood on labelled scores; identity
    (``method: none``) with fewer than :data:`MIN_CLASS_ROWS` rows of either class. A slope ≤ 0 (scores
    that do not rank) is refitted with the slope fixed at 1."""
    from scipy.optimize import minimize

    y = np.asarray(y, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int(y.size - y.sum())
    if min(n_pos, n_neg) < MIN_CLASS_ROWS:
        return {"method": "none", "reason": f"{n_pos} positive / {n_neg} negative labelled rows"}
    z = _logit(p)

    def loss(theta: np.ndarray, slope: float | None = None) -> float:
        a = theta[0] if slope is None else slope
        b = theta[-1]
        m = a * z + b
        return float(np.sum(np.logaddexp(0.0, m) - y * m))

    fit = minimize(loss, np.array([1.0, 0.0]), method="L-BFGS-B")
    slope, intercept = float(fit.x[0]), float(fit.x[1])
    if slope <= 0:
        slope, intercept = 1.0, float(minimize(lambda t: loss(t, 1.0), np.array([0.0])).x[0])
    return {
        "method": "platt",
        "slope": slope,
        "intercept": intercept,
        "n_positive": n_pos,
        "n_negative": n_neg,
    }


def recalibrate(p: np.ndarray, calibration: dict[str, Any] | None) -> np.ndarray:
    """Apply a :func:`fit_platt` result (identity for ``None`` or ``method: none``)."""
    p = np.asarray(p, dtype=np.float64)
    if not calibration or calibration.get("method") != "platt":
        return p
    m = calibration["slope"] * _logit(p) + calibration["intercept"]
    return np.exp(-np.logaddexp(0.0, -m))


def expected_confusion(p: np.ndarray, threshold: float) -> dict[str, float]:
    """Expected TP, FP, FN, TN at ``threshold`` from calibrated probabilities ``p``."""
    p = np.asarray(p, dtype=np.float64)
    flagged = p >= threshold
    return {
        "tp": float(p[flagged].sum()),
        "fp": float((1 - p[flagged]).sum()),
        "fn": float(p[~flagged].sum()),
        "tn": float((1 - p[~flagged]).sum()),
    }


def expected_roc_auc(p: np.ndarray) -> float:
    """CBPE ROC-AUC of calibrated scores ``p`` (pairs of distinct rows; ties count one half)."""
    p = np.asarray(p, dtype=np.float64)
    if p.size < 2:
        return float("nan")
    order = np.argsort(p, kind="stable")
    ps = p[order]
    starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])
    pos = np.add.reduceat(ps, starts)  # expected positives per tie group
    neg = np.add.reduceat(1 - ps, starts)
    own = np.add.reduceat(ps * (1 - ps), starts)  # a row paired with itself
    neg_below = np.cumsum(neg) - neg
    concordant = (pos * neg_below).sum() + 0.5 * ((pos * neg).sum() - own.sum())
    pairs = p.sum() * (1 - p).sum() - (p * (1 - p)).sum()
    return float(concordant / pairs) if pairs > 0 else float("nan")


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Realised ROC-AUC (ties one half, as ``sklearn.metrics.roc_auc_score``); NaN with one class."""
    y = np.asarray(y).astype(bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = sps.rankdata(np.asarray(p, dtype=np.float64))
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def label_draws(p: np.ndarray, draws: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(AUCs, positive counts) of ``draws`` label vectors drawn Bernoulli(p); NaN AUC for one class."""
    p = np.asarray(p, dtype=np.float64)
    rng = np.random.default_rng(seed)
    y = rng.random((draws, p.size)) < p
    ranks = sps.rankdata(p)
    n1 = y.sum(axis=1).astype(np.float64)
    n0 = p.size - n1
    rank_sum = y.astype(np.float64) @ ranks
    with np.errstate(invalid="ignore", divide="ignore"):
        aucs = np.where((n1 > 0) & (n0 > 0), (rank_sum - n1 * (n1 + 1) / 2) / (n1 * n0), np.nan)
    return aucs, n1


@dataclass(frozen=True)
class WindowPerformance:
    """One window (all rows at one cutoff): estimate, band and, once labels are known, realised values."""

    cutoff: str
    offset_in_reference: bool  # the reference holds this cutoff offset: realised values are tested
    n_rows: int
    estimated_auc: float
    auc_band: list[float]  # central 95% of the AUC under the no-concept-drift assumption
    expected_positive_rate: float
    positive_rate_band: list[float]
    labelled: bool
    realised_auc: float | None
    realised_positive_rate: float | None
    p_auc: float | None  # P(AUC this low | assumption), normal approximation of the draws
    p_rate: float | None  # two-sided, Poisson-binomial normal approximation
    expected_net_value: float  # business: targeting the top share, per the evaluate config
    realised_net_value: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def targeting_value(p: np.ndarray, y: np.ndarray | None, cfg: EvaluateConfig) -> tuple[float, float | None]:
    """Net value of contacting the top ``cfg.top_k_share`` by score: expected (from p) and realised (y).

    net = churners reached × success rate × value per retained user − contacts × intervention cost.
    """
    p = np.asarray(p, dtype=np.float64)
    if p.size == 0:
        return 0.0, None
    k = max(1, int(np.ceil(cfg.top_k_share * p.size)))
    top = np.argsort(-p, kind="stable")[:k]
    gain = cfg.intervention_success_rate * cfg.value_per_retained_user
    expected = float(p[top].sum() * gain - k * cfg.intervention_cost)
    realised = None if y is None else float(np.asarray(y)[top].sum() * gain - k * cfg.intervention_cost)
    return expected, realised


def window_performance(
    cutoff: str,
    in_reference: bool,
    p: np.ndarray,
    y: np.ndarray | None,
    draws: int,
    seed: int,
    business: EvaluateConfig,
) -> WindowPerformance:
    """Estimate, predictive band and (when ``y`` is given) realised values with their tail p-values."""
    p = np.asarray(p, dtype=np.float64)
    aucs, positives = label_draws(p, draws, seed)
    finite = aucs[np.isfinite(aucs)]
    band = [float(v) for v in np.percentile(finite, [2.5, 97.5])] if finite.size else [float("nan")] * 2
    rate_band = [float(v) / p.size for v in np.percentile(positives, [2.5, 97.5])]
    expected_value, realised_value = targeting_value(p, y, business)
    realised_auc = realised_rate = p_auc = p_rate = None
    if y is not None:
        y = np.asarray(y).astype(np.int64)
        realised_auc = roc_auc(y, p)
        realised_rate = float(y.mean())
        sd_auc = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
        if np.isfinite(realised_auc) and sd_auc > 0:
            p_auc = float(sps.norm.cdf((realised_auc - float(finite.mean())) / sd_auc))
        var = float((p * (1 - p)).sum())
        if var > 0:
            z = (float(y.sum()) - float(p.sum())) / np.sqrt(var)
            p_rate = float(2 * sps.norm.sf(abs(z)))
        if realised_auc is not None and not np.isfinite(realised_auc):
            realised_auc = None
    return WindowPerformance(
        cutoff=cutoff,
        offset_in_reference=bool(in_reference),
        n_rows=int(p.size),
        estimated_auc=expected_roc_auc(p),
        auc_band=band,
        expected_positive_rate=float(p.mean()) if p.size else float("nan"),
        positive_rate_band=rate_band,
        labelled=y is not None,
        realised_auc=realised_auc,
        realised_positive_rate=realised_rate,
        p_auc=p_auc,
        p_rate=p_rate,
        expected_net_value=expected_value,
        realised_net_value=realised_value,
    )
