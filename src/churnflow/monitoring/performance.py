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
* a **predictive band**: ``monitor.performance_draws`` label vectors drawn from the scores (each with
  the recalibration's parameters drawn from their law, so a small reference widens the band) give the
  distribution the realised AUC and churn count would have if the assumption held.

When labels arrive, the realised AUC and churn count are tested against that band (normal laws with the
draws' mean and sd; one-sided for the AUC: concept drift lowers it; two-sided for the churn count): a
realised value outside it means the assumption broke — the concept drifted — which covariate tests
cannot see.

That band rests on the score reference (a few hundred held-out rows), so it is wide. A second, sharper
test needs no model: the **label shift** test compares a labelled window's realised churn rate with the
reference world's realised rate at the same cutoff offset (all development rows there, one per user) —
a two-sided two-proportion test (:func:`two_proportion_p`, the Pearson chi-square of the 2×2 table). It
says the churn rate moved, not why: with no covariate alert beside it, the concept drifted.
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


#: Prior of the monitor's recalibration: centred on the served calibration (slope 1, intercept 0), with
#: these standard deviations — a weak pull that matters only when the reference holds few users.
PRIOR_SLOPE_SD = 0.5
PRIOR_INTERCEPT_SD = 1.0


def fit_platt(p: np.ndarray, y: np.ndarray, n_users: int | None = None) -> dict[str, Any]:
    """``sigmoid(slope · logit(p) + intercept)`` fitted to labelled scores, with its uncertainty.

    Maximum a posteriori: the log-likelihood of the rows divided by the design effect ``rows / n_users``
    (a user's rows at several cutoffs are not independent; ``None``: rows are independent), plus a
    Gaussian prior centred on the identity (:data:`PRIOR_SLOPE_SD`, :data:`PRIOR_INTERCEPT_SD`). ``cov``
    is the inverse Hessian there (Laplace): a small reference gives a wide law, which the predictive bands
    carry. Identity (``method: none``) with fewer than :data:`MIN_CLASS_ROWS` rows of either class.
    """
    from scipy.optimize import minimize

    y = np.asarray(y, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int(y.size - y.sum())
    if min(n_pos, n_neg) < MIN_CLASS_ROWS:
        return {"method": "none", "reason": f"{n_pos} positive / {n_neg} negative labelled rows"}
    z = _logit(p)
    x = np.column_stack([z, np.ones_like(z)])
    weight = min(1.0, (n_users or y.size) / y.size)  # 1 / design effect
    prior = np.array([1.0, 0.0])
    precision = np.diag([1 / PRIOR_SLOPE_SD**2, 1 / PRIOR_INTERCEPT_SD**2])

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        m = x @ theta
        d = theta - prior
        value = weight * float(np.sum(np.logaddexp(0.0, m) - y * m)) + 0.5 * float(d @ precision @ d)
        grad = weight * (x.T @ (np.exp(-np.logaddexp(0.0, -m)) - y)) + precision @ d
        return value, grad

    theta = minimize(objective, prior.copy(), jac=True, method="L-BFGS-B").x
    w = np.exp(-np.logaddexp(0.0, -(x @ theta)))
    hessian = weight * (x.T * (w * (1 - w))) @ x + precision
    cov = np.linalg.inv(hessian)
    return {
        "method": "platt",
        "slope": float(theta[0]),
        "intercept": float(theta[1]),
        "cov": [[float(v) for v in row] for row in cov],
        "design_effect": 1 / weight,
        "n_positive": n_pos,
        "n_negative": n_neg,
    }


def _apply(z: np.ndarray, slope: np.ndarray | float, intercept: np.ndarray | float) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -(slope * z + intercept)))


def recalibrate(p: np.ndarray, calibration: dict[str, Any] | None) -> np.ndarray:
    """Apply a :func:`fit_platt` result at its estimate (identity for ``None`` or ``method: none``)."""
    p = np.asarray(p, dtype=np.float64)
    if not calibration or calibration.get("method") != "platt":
        return p
    return _apply(_logit(p), calibration["slope"], calibration["intercept"])


def draw_probabilities(
    p: np.ndarray, calibration: dict[str, Any] | None, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """(draws, rows) probabilities: the recalibration's parameters drawn from their law each time (the
    scores themselves when there is no recalibration)."""
    p = np.asarray(p, dtype=np.float64)
    if not calibration or calibration.get("method") != "platt":
        return np.broadcast_to(p, (draws, p.size))
    mean = np.array([calibration["slope"], calibration["intercept"]])
    cov = np.asarray(calibration.get("cov", np.zeros((2, 2))), dtype=np.float64)
    theta = rng.multivariate_normal(mean, cov, size=draws, method="cholesky")
    return _apply(_logit(p)[None, :], theta[:, :1], theta[:, 1:])


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


def label_draws(probabilities: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(AUCs, positive counts) of label vectors drawn Bernoulli(row) from a (draws, rows) probability
    matrix, the AUC of each draw taken on that draw's probabilities; NaN AUC where a draw has one class."""
    probs = np.atleast_2d(np.asarray(probabilities, dtype=np.float64))
    rng = np.random.default_rng(seed)
    y = rng.random(probs.shape) < probs
    n1 = y.sum(axis=1).astype(np.float64)
    n0 = probs.shape[1] - n1
    ranks = sps.rankdata(probs, axis=1)
    rank_sum = (y * ranks).sum(axis=1)
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
    reference_positive_rate: float | None  # the reference's realised churn rate at this cutoff offset
    p_rate_reference: float | None  # two-sided two-proportion test: realised rate vs the reference's
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


def _normal_p(observed: float, values: np.ndarray, two_sided: bool) -> float | None:
    """P-value of ``observed`` under a normal law with the mean and sd of ``values``."""
    v = values[np.isfinite(values)]
    sd = float(v.std(ddof=1)) if v.size > 1 else 0.0
    if not np.isfinite(observed) or sd <= 0:
        return None
    z = (observed - float(v.mean())) / sd
    return float(2 * sps.norm.sf(abs(z))) if two_sided else float(sps.norm.cdf(z))


def two_proportion_p(positives_a: int, n_a: int, positives_b: int, n_b: int) -> float | None:
    """Two-sided p-value that two independent samples share one positive rate (pooled two-proportion z
    test, equal to Pearson's chi-square on the 2×2 table without continuity correction); ``None`` when a
    sample is empty or the pooled rate is 0 or 1."""
    if n_a <= 0 or n_b <= 0:
        return None
    pooled = (positives_a + positives_b) / (n_a + n_b)
    if pooled <= 0.0 or pooled >= 1.0:
        return None
    se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b))
    z = (positives_a / n_a - positives_b / n_b) / se
    return float(2 * sps.norm.sf(abs(z)))


def window_performance(
    cutoff: str,
    in_reference: bool,
    p_served: np.ndarray,
    y: np.ndarray | None,
    calibration: dict[str, Any] | None,
    draws: int,
    seed: int,
    business: EvaluateConfig,
    reference_labels: tuple[int, int] | None = None,
) -> WindowPerformance:
    """Estimate, predictive band and (when ``y`` is given) realised values with their tail p-values.

    ``p_served``: the model's probabilities; ``calibration``: the monitor's recalibration (its parameter
    uncertainty widens the bands). The estimate uses the recalibration's point estimate.
    ``reference_labels``: (churners, rows) of the reference at this window's cutoff offset, for the
    label-shift test (rows of one cutoff: one per user, independent).
    """
    p_served = np.asarray(p_served, dtype=np.float64)
    p = recalibrate(p_served, calibration)
    rng = np.random.default_rng(seed)
    aucs, positives = label_draws(draw_probabilities(p_served, calibration, draws, rng), seed + 1)
    finite = aucs[np.isfinite(aucs)]
    band = [float(v) for v in np.percentile(finite, [2.5, 97.5])] if finite.size else [float("nan")] * 2
    rate_band = [float(v) / p.size for v in np.percentile(positives, [2.5, 97.5])]
    expected_value, realised_value = targeting_value(p, y, business)
    realised_auc = realised_rate = p_auc = p_rate = p_rate_reference = None
    reference_rate = (
        reference_labels[0] / reference_labels[1] if reference_labels and reference_labels[1] else None
    )
    if y is not None:
        y = np.asarray(y).astype(np.int64)
        auc = roc_auc(y, p)
        realised_auc = auc if np.isfinite(auc) else None
        realised_rate = float(y.mean())
        p_auc = _normal_p(auc, finite, two_sided=False) if realised_auc is not None else None
        p_rate = _normal_p(float(y.sum()), positives, two_sided=True)
        if reference_labels is not None:
            p_rate_reference = two_proportion_p(int(y.sum()), int(y.size), *reference_labels)
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
        reference_positive_rate=reference_rate,
        p_rate_reference=p_rate_reference,
        expected_net_value=expected_value,
        realised_net_value=realised_value,
    )
