"""Probability calibration fitted on validation predictions: ``platt``, ``isotonic`` or ``none``.

The served probability must mean what it says (of users scored 0.3, about 30% churn). Boosted trees trained
with class weights and early cutoffs are not calibrated on later cutoffs, so a one-dimensional map from the
model's raw probability to a calibrated one is fitted on the out-of-time validation rows (never on test)
and shipped inside the model folder.

* ``platt``: logistic regression on the raw log-odds (two numbers; keeps the ranking, so AUC is unchanged);
* ``isotonic``: monotone step map (more flexible; ties may lower AUC slightly), interpolated linearly
  between its knots;
* ``none``: identity.

Invariant: :meth:`Calibrator.apply` is monotone non-decreasing and maps into [0, 1]; the same inputs give
the same calibrator (no randomness).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

METHODS: tuple[str, ...] = ("platt", "isotonic", "none")
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(q / (1 - q))


@dataclass(frozen=True)
class Calibrator:
    """A fitted monotone map raw probability → calibrated probability."""

    method: str = "none"
    slope: float = 1.0  # platt: sigmoid(slope * logit(p) + intercept)
    intercept: float = 0.0
    knots_x: list[float] = field(default_factory=list)  # isotonic: knots on the raw probability
    knots_y: list[float] = field(default_factory=list)
    n_fit: int = 0

    def apply(self, p: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for raw probabilities ``p`` (same shape)."""
        p = np.asarray(p, dtype=np.float64)
        if self.method == "none" or p.size == 0:
            return p
        if self.method == "platt":
            z = self.slope * _logit(p) + self.intercept
            return np.exp(-np.logaddexp(0.0, -z))
        if self.method == "isotonic":
            return np.interp(p, self.knots_x, self.knots_y)
        raise ValueError(f"unknown calibration method {self.method!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``model_meta.json`` → ``calibration``)."""
        out: dict[str, Any] = {"method": self.method, "n_fit": self.n_fit}
        if self.method == "platt":
            out.update({"slope": self.slope, "intercept": self.intercept})
        if self.method == "isotonic":
            out.update({"knots_x": self.knots_x, "knots_y": self.knots_y})
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Calibrator:
        """Inverse of :meth:`to_dict`; ``None`` (a model saved before calibration existed) → identity."""
        if not data:
            return cls()
        method = data.get("method", "none")
        if method not in METHODS:
            raise ValueError(f"model_meta.json calibration.method must be one of {METHODS}, got {method!r}")
        if method == "isotonic" and len(data.get("knots_x", [])) != len(data.get("knots_y", [])):
            raise ValueError("model_meta.json calibration: knots_x and knots_y differ in length")
        return cls(
            method=method,
            slope=float(data.get("slope", 1.0)),
            intercept=float(data.get("intercept", 0.0)),
            knots_x=[float(v) for v in data.get("knots_x", [])],
            knots_y=[float(v) for v in data.get("knots_y", [])],
            n_fit=int(data.get("n_fit", 0)),
        )


def fit_calibrator(y: np.ndarray, p_raw: np.ndarray, method: str) -> Calibrator:
    """Fit ``method`` on validation labels ``y`` (0/1) and the model's raw probabilities ``p_raw``."""
    y = np.asarray(y).astype(np.int64)
    p_raw = np.asarray(p_raw, dtype=np.float64)
    if method not in METHODS:
        raise ValueError(f"train.calibration must be one of {METHODS}, got {method!r}")
    if method == "none":
        return Calibrator(n_fit=len(y))
    if len(np.unique(y)) < 2:
        raise ValueError(f"cannot fit a {method} calibrator on validation rows holding one class")
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        # a (nearly) unpenalised logistic fit of y on logit(p): the two Platt numbers
        fit = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(p_raw)[:, None], y)
        return Calibrator("platt", float(fit.coef_[0, 0]), float(fit.intercept_[0]), n_fit=len(y))
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p_raw, y)
    return Calibrator(
        "isotonic",
        knots_x=[float(v) for v in iso.X_thresholds_],
        knots_y=[float(v) for v in iso.y_thresholds_],
        n_fit=len(y),
    )
