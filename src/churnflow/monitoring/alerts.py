"""Alerts from a check: each with a kind, a severity and a cooldown in data time.

Kinds and severities:

* ``feature_drift`` — at least one feature drifts after the correction across features; ``critical``
  from ``monitor.drift_share_critical`` of the features on, else ``warning``;
* ``multivariate_drift`` (critical) — the domain classifier's AUC exceeds its calibrated threshold;
* ``score_drift`` (warning) — the model's probability is distributed differently;
* ``performance_estimate`` (critical) — the label-free AUC estimate fell ``monitor.auc_drop_critical``
  below the reference's;
* ``performance_realised`` (critical) — where labels are known, at cutoff offsets the reference holds,
  the realised AUC lies below the band the calibrated scores predict (Benjamini–Hochberg across windows
  at ``monitor.performance_alpha``): the concept drifted;
* ``churn_rate`` (critical) — the realised churn count is outside its predicted band (same test family);
* ``label_shift`` (critical) — the realised churn rate of a labelled window differs from the reference
  world's realised rate at the same cutoff offset (two-proportion test; same test family): churn moved,
  and with no covariate alert beside it, the concept drifted.

Cooldown: an alert of a kind raised at data time t (the export's last event) is marked ``suppressed``
when the same kind was raised less than ``monitor.cooldown_days`` before t; the state (kind → time last
raised) is a plain dict the caller stores between runs. Suppressed alerts are listed but do not set the
status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from churnflow.config.monitor import MonitorConfig
from churnflow.monitoring.domain import DomainResult
from churnflow.monitoring.drift import ColumnDrift
from churnflow.monitoring.performance import WindowPerformance
from churnflow.monitoring.stats import adjust_pvalues

SEVERITIES: tuple[str, ...] = ("ok", "warning", "critical")


@dataclass(frozen=True)
class Alert:
    """One alert; ``at`` is the data time (ISO) it refers to."""

    kind: str
    severity: str
    message: str
    at: str
    suppressed: bool = False
    subjects: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        out = asdict(self)
        out["subjects"] = list(self.subjects)
        return out


def _top(columns: Sequence[ColumnDrift], n: int) -> list[ColumnDrift]:
    return sorted((c for c in columns if c.drift), key=lambda c: (c.p_adjusted, -c.effect_value, c.name))[:n]


def _realised_detail(kind: str, w: WindowPerformance) -> str:
    """The realised value of a labelled window beside what it was tested against."""
    if kind == "performance_realised":
        return f"AUC {w.realised_auc:.3f} vs {w.estimated_auc:.3f}"
    if kind == "churn_rate":
        return f"rate {w.realised_positive_rate:.3f} vs {w.expected_positive_rate:.3f}"
    return f"rate {w.realised_positive_rate:.3f} vs reference {w.reference_positive_rate:.3f}"


def candidate_alerts(
    features: Sequence[ColumnDrift],
    score: ColumnDrift,
    domain: DomainResult | None,
    estimated_auc: float,
    reference_auc: float,
    windows: Sequence[WindowPerformance],
    cfg: MonitorConfig,
    at: str,
) -> list[Alert]:
    """Every alert the results call for, before the cooldown."""
    alerts: list[Alert] = []
    drifting = [c for c in features if c.drift]
    if drifting:
        share = len(drifting) / max(len(features), 1)
        top = _top(features, 5)
        names = ", ".join(f"{c.name} ({c.test} {c.statistic:.3g})" for c in top)
        alerts.append(
            Alert(
                "feature_drift",
                "critical" if share >= cfg.drift_share_critical else "warning",
                f"{len(drifting)} of {len(features)} features drift ({share:.1%}); largest: {names}",
                at,
                subjects=tuple(c.name for c in sorted(drifting, key=lambda c: c.name)),
            )
        )
    if domain is not None and domain.drift:
        alerts.append(
            Alert(
                "multivariate_drift",
                "critical",
                f"a classifier tells current from reference rows with AUC {domain.auc:.3f} "
                f"(threshold {domain.threshold:.3f}, from reference-vs-reference splits)",
                at,
            )
        )
    if score.drift:
        alerts.append(
            Alert(
                "score_drift",
                "warning",
                f"the churn probability is distributed differently ({score.test} {score.statistic:.3g}, "
                f"mean {score.mean_reference or 0:.3f} → {score.mean_current or 0:.3f})",
                at,
                subjects=(score.name,),
            )
        )
    if np.isfinite(estimated_auc) and estimated_auc < reference_auc - cfg.auc_drop_critical:
        alerts.append(
            Alert(
                "performance_estimate",
                "critical",
                f"label-free AUC estimate {estimated_auc:.3f}, reference {reference_auc:.3f} "
                f"(drop > {cfg.auc_drop_critical})",
                at,
            )
        )
    labelled = [w for w in windows if w.labelled and w.offset_in_reference]  # like for like
    for kind, attr, words in (
        ("performance_realised", "p_auc", "realised AUC below the band the calibrated scores predict"),
        ("churn_rate", "p_rate", "realised churn rate outside the band the calibrated scores predict"),
        ("label_shift", "p_rate_reference", "realised churn rate differs from the reference's at the offset"),
    ):
        tested = [w for w in labelled if getattr(w, attr) is not None]
        if not tested:
            continue
        adjusted = adjust_pvalues(np.array([getattr(w, attr) for w in tested]), "bh")
        hits = [w for w, p in zip(tested, adjusted, strict=True) if p < cfg.performance_alpha]
        if hits:
            detail = ", ".join(f"{w.cutoff[:10]}: {_realised_detail(kind, w)}" for w in hits[:4])
            alerts.append(
                Alert(
                    kind,
                    "critical",
                    f"{words} in {len(hits)} of {len(tested)} labelled windows ({detail})",
                    at,
                    subjects=tuple(w.cutoff for w in hits),
                )
            )
    return alerts


def apply_cooldown(
    alerts: Sequence[Alert], state: Mapping[str, str], cooldown_days: int
) -> tuple[list[Alert], dict[str, str]]:
    """Mark alerts raised again within the cooldown as suppressed; return them and the new state."""
    new_state = dict(state)
    out = []
    for alert in alerts:
        last = state.get(alert.kind)
        now = datetime.fromisoformat(alert.at)
        recent = last is not None and timedelta(0) <= now - datetime.fromisoformat(last) < timedelta(
            days=cooldown_days
        )
        if recent:
            out.append(Alert(**{**asdict(alert), "suppressed": True}))
        else:
            out.append(alert)
            new_state[alert.kind] = alert.at
    return out, new_state


def status_of(alerts: Sequence[Alert]) -> str:
    """The worst severity among alerts that are not suppressed (``ok`` when none)."""
    live = [SEVERITIES.index(a.severity) for a in alerts if not a.suppressed]
    return SEVERITIES[max(live, default=0)]
