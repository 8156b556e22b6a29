"""Decision threshold rules: ``max_f1``, ``target_precision`` or ``top_k`` (a share of users to target).

The threshold is chosen on validation predictions (never on the test set) and shipped in ``model_meta.json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

RULES: tuple[str, ...] = ("max_f1", "target_precision", "top_k")


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen threshold, the rule and a sentence saying how it was obtained."""

    threshold: float
    rule: str
    how: str

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for ``model_meta.json``."""
        return asdict(self)


def _pr_points(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall at each distinct score used as threshold (descending thresholds)."""
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    tp = np.cumsum(ys)
    fp = np.cumsum(1 - ys)
    last = np.r_[np.diff(ps) != 0, True]  # the last index of each distinct score
    tp, fp, thr = tp[last], fp[last], ps[last]
    precision = tp / (tp + fp)
    recall = tp / max(int(ys.sum()), 1)
    return precision, recall, thr


def flagged_note(p: np.ndarray, threshold: float) -> str:
    """Plain words for how many validation users a threshold flags (warns when it flags nearly all)."""
    share = float((p >= threshold).mean())
    warn = (
        " — WARNING: nearly everyone is flagged; the model barely ranks on validation" if share >= 0.9 else ""
    )
    return f"; flags {share:.0%} of validation users{warn}"


def choose_threshold(
    y: np.ndarray, p: np.ndarray, rule: str, *, target_precision: float = 0.6, top_k_share: float = 0.25
) -> ThresholdChoice:
    """Pick a threshold on scores ``p`` for labels ``y`` by ``rule``; predictions are ``p >= threshold``."""
    y = np.asarray(y).astype(np.int64)
    p = np.asarray(p, dtype=np.float64)
    if rule not in RULES:
        raise ValueError(f"threshold rule must be one of {RULES}, got {rule!r}")
    if len(p) == 0:
        raise ValueError("cannot choose a threshold on an empty validation set")
    choice = _choose(y, p, rule, target_precision, top_k_share)
    return ThresholdChoice(choice.threshold, choice.rule, choice.how + flagged_note(p, choice.threshold))


def _choose(
    y: np.ndarray, p: np.ndarray, rule: str, target_precision: float, top_k_share: float
) -> ThresholdChoice:
    if rule == "top_k":
        if not 0.0 < top_k_share <= 1.0:
            raise ValueError(f"top_k_share must be in (0, 1], got {top_k_share}")
        k = max(1, int(np.ceil(top_k_share * len(p))))
        thr = float(np.sort(p)[::-1][k - 1])
        return ThresholdChoice(
            thr, rule, f"score of the {k}-th highest of {len(p)} validation users (top {top_k_share:.0%})"
        )
    precision, recall, thr = _pr_points(y, p)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    if rule == "target_precision":
        ok = np.flatnonzero(precision >= target_precision)
        if len(ok):
            best = ok[np.argmax(recall[ok])]
            return ThresholdChoice(
                float(thr[best]),
                rule,
                f"highest recall ({recall[best]:.3f}) with validation precision ≥ {target_precision:.2f}",
            )
        best = int(np.argmax(f1))
        return ThresholdChoice(
            float(thr[best]),
            "max_f1",
            f"no threshold reaches validation precision {target_precision:.2f}: "
            f"fell back to max F1 ({f1[best]:.3f})",
        )
    best = int(np.argmax(f1))
    return ThresholdChoice(float(thr[best]), rule, f"maximises validation F1 ({f1[best]:.3f})")
