"""One check of a current window against the reference: the monitor's whole verdict, no I/O.

Input: the reference (:mod:`churnflow.monitoring.reference`) and the current rows
(:func:`churnflow.monitoring.windows.current_rows`: keys, ``offset``, ``in_reference``, ``label``,
``churn_probability``, features). Output: a :class:`CheckResult` with

* every feature and the score tested (:mod:`churnflow.monitoring.drift`) on the rows at the reference's
  offsets, corrected as one family, the drift share overall and per family;
* the domain classifier (:mod:`churnflow.monitoring.domain`);
* per cutoff: the label-free AUC estimate with its band, and realised values where labels are known
  (:mod:`churnflow.monitoring.performance`), plus the expected value of targeting the top share;
* alerts with severities after the cooldown (:mod:`churnflow.monitoring.alerts`) and the status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from churnflow.config.evaluate import EvaluateConfig
from churnflow.config.monitor import MonitorConfig
from churnflow.monitoring.alerts import Alert, apply_cooldown, candidate_alerts, status_of
from churnflow.monitoring.domain import DomainResult, domain_check
from churnflow.monitoring.drift import ColumnDrift, column_tests, correct
from churnflow.monitoring.performance import (
    WindowPerformance,
    expected_roc_auc,
    recalibrate,
    roc_auc,
    window_performance,
)
from churnflow.monitoring.profile import DriftInputError, code_matrix
from churnflow.monitoring.reference import (
    SCORE_NAME,
    profiles_of,
    score_profile,
    user_index,
    validate_reference,
)

REQUIRED_COLUMNS: tuple[str, ...] = ("user_id", "cutoff", "offset", "in_reference", "label", SCORE_NAME)


@dataclass
class CheckResult:
    """Everything one check found (see the module docstring)."""

    window: dict[str, Any]
    features: list[ColumnDrift]
    score: ColumnDrift
    domain: DomainResult | None
    performance: list[WindowPerformance]
    summary: dict[str, Any]
    alerts: list[Alert] = field(default_factory=list)
    status: str = "ok"

    @property
    def drifting(self) -> list[ColumnDrift]:
        """Drifting features, most significant first."""
        return sorted(
            (c for c in self.features if c.drift), key=lambda c: (c.p_adjusted, -c.effect_value, c.name)
        )

    def families(self) -> dict[str, dict[str, int]]:
        """Per feature family: watched and drifting counts."""
        out: dict[str, dict[str, int]] = {}
        for c in self.features:
            fam = out.setdefault(c.family, {"watched": 0, "drifting": 0})
            fam["watched"] += 1
            fam["drifting"] += int(c.drift)
        return dict(sorted(out.items()))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``drift.json``): ``features`` a list ordered by adjusted p-value, then effect
        (a list, so the order survives JSON written with sorted keys)."""
        ordered = sorted(self.features, key=lambda c: (c.p_adjusted, -c.effect_value, c.name))
        return {
            "status": self.status,
            "window": self.window,
            "summary": self.summary,
            "families": self.families(),
            "alerts": [a.to_dict() for a in self.alerts],
            "domain_classifier": self.domain.to_dict() if self.domain else None,
            "score": self.score.to_dict(),
            "performance": [w.to_dict() for w in self.performance],
            "features": [c.to_dict() for c in ordered],
        }


def _check_rows(rows: pl.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
    if missing:
        raise DriftInputError(f"current rows: column(s) missing: {missing}")


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def performance_windows(
    rows: pl.DataFrame,
    calibration: Mapping[str, Any] | None,
    cfg: MonitorConfig,
    business: EvaluateConfig,
    seed: int,
    reference_labels: Mapping[str, Any] | None = None,
) -> list[WindowPerformance]:
    """One :class:`WindowPerformance` per cutoff, on the recalibrated scores; labelled when every row's
    label is known. ``reference_labels``: the reference's ``labels`` section (churners and rows per cutoff
    offset) for the label-shift test of windows at those offsets."""
    by_offset = (reference_labels or {}).get("by_offset", {})
    out = []
    for i, (cutoff, part) in enumerate(rows.sort("cutoff").group_by("cutoff", maintain_order=True)):
        at_offset = by_offset.get(str(int(part["offset"][0])))
        ref_labels = (int(at_offset["positives"]), int(at_offset["rows"])) if at_offset else None
        labels = part["label"]
        y = labels.cast(pl.Int64).to_numpy() if labels.null_count() == 0 else None
        in_ref = bool(part["in_reference"][0])
        cal = dict(calibration) if calibration else None
        p_served = part[SCORE_NAME].to_numpy()
        out.append(
            window_performance(
                _iso(cutoff[0]),
                in_ref,
                p_served,
                y,
                cal,
                cfg.performance_draws,
                seed + i,
                business,
                ref_labels if in_ref else None,
            )
        )
    return out


def run_check(
    reference: Mapping[str, Any],
    rows: pl.DataFrame,
    cfg: MonitorConfig,
    business: EvaluateConfig,
    seed: int,
    *,
    state: Mapping[str, str] | None = None,
    at: datetime | None = None,
    source: str = "",
) -> tuple[CheckResult, dict[str, str]]:
    """Check ``rows`` against ``reference``; returns the result and the new alert state.

    ``at``: the data time of the check (default: the latest cutoff), used by the cooldown.
    """
    validate_reference(reference)
    _check_rows(rows)
    matched = rows.filter(pl.col("in_reference")).sort(["cutoff", "user_id"])
    if matched.height == 0:
        raise DriftInputError(
            f"current rows: no cutoff offset in common with the reference (reference offsets "
            f"{reference['offsets_days'][:3]}…, current {sorted(set(rows['offset'].to_list()))[:3]}…)"
        )
    profiles = profiles_of(reference)
    codes = code_matrix(matched, profiles)
    users = user_index(matched["user_id"])
    n_users = int(users.max() + 1)
    columns = column_tests(profiles, codes, int(reference["n_users"]), n_users, cfg)
    score_prof = score_profile(reference)
    score_codes = code_matrix(matched, [score_prof])
    (score_col,) = column_tests([score_prof], score_codes, int(reference["score"]["n_users"]), n_users, cfg)
    corrected = correct([*columns, score_col], cfg)
    columns, score_col = corrected[:-1], corrected[-1]
    domain = domain_check(
        reference["domain"], len(profiles), codes, users, matched["offset"].to_numpy(), cfg, seed
    )
    calibration = reference["score"].get("calibration")
    windows = performance_windows(rows, calibration, cfg, business, seed, reference.get("labels"))
    p = recalibrate(matched[SCORE_NAME].to_numpy(), calibration)
    labelled = rows.filter(pl.col("label").is_not_null())
    estimated = expected_roc_auc(p)
    reference_auc = float(reference["score"]["estimated_auc"])
    n_drifting = sum(c.drift for c in columns)
    offsets = sorted({int(o) for o in rows["offset"].to_list()})
    compared = sorted({int(o) for o in matched["offset"].to_list()})
    summary = {
        "regime": "effect sizes" if n_users >= cfg.large_window_users else "p-value tests",
        "drift_share": n_drifting / max(len(columns), 1),
        "n_drifting": int(n_drifting),
        "n_features": len(columns),
        "estimated_auc": estimated,
        "reference_estimated_auc": reference_auc,
        "reference_realised_auc": reference["score"].get("realised_auc"),
        "realised_auc": roc_auc(labelled["label"].to_numpy(), labelled[SCORE_NAME].to_numpy())
        if labelled.height
        else None,
        "labelled_rows": labelled.height,
        "expected_churners_latest": windows[-1].expected_positive_rate * windows[-1].n_rows
        if windows
        else 0.0,
        "business": _business(windows, reference, business),
        "score_histogram": score_histogram(reference, matched[SCORE_NAME].to_numpy()),
    }
    end = at or rows["cutoff"].max()
    window = {
        "source": source,
        "n_rows": rows.height,
        "n_users": int(rows["user_id"].n_unique()),
        "compared_rows": matched.height,
        "compared_users": n_users,
        "offsets_days": offsets,
        "compared_offsets_days": compared,
        "reference_offsets_missing": [o for o in reference["offsets_days"] if o not in compared],
        "first_cutoff": _iso(rows["cutoff"].min()),
        "last_cutoff": _iso(rows["cutoff"].max()),
        "at": _iso(end),
        "reference_rows": int(reference["n_rows"]),
        "reference_users": int(reference["n_users"]),
    }
    alerts = candidate_alerts(columns, score_col, domain, estimated, reference_auc, windows, cfg, _iso(end))
    alerts, new_state = apply_cooldown(alerts, state or {}, cfg.cooldown_days)
    result = CheckResult(
        window=window,
        features=columns,
        score=score_col,
        domain=domain,
        performance=windows,
        summary=summary,
        alerts=alerts,
        status=status_of(alerts),
    )
    return result, new_state


def score_histogram(
    reference: Mapping[str, Any], current: np.ndarray, bins: int = 20
) -> dict[str, list[float]]:
    """Shares of reference and current scores in ``bins`` equal-width bins over [0, 1]."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    prof = reference["score"]["profile"]
    ref_hist, _ = np.histogram(np.asarray(prof["support"], dtype=np.float64), edges, weights=prof["counts"])
    cur_hist, _ = np.histogram(np.asarray(current, dtype=np.float64), edges)
    return {
        "edges": [float(e) for e in edges],
        "reference": [float(v) for v in ref_hist / max(ref_hist.sum(), 1.0)],
        "current": [float(v) for v in cur_hist / max(cur_hist.sum(), 1)],
    }


def _business(
    windows: list[WindowPerformance], reference: Mapping[str, Any], business: EvaluateConfig
) -> dict[str, Any]:
    """Expected (and realised where known) net value of targeting, per 1,000 users scored."""
    n = sum(w.n_rows for w in windows)
    known = [w for w in windows if w.realised_net_value is not None]
    per_1000 = 1000.0 / n if n else 0.0
    return {
        "top_k_share": business.top_k_share,
        "expected_net_value_per_1000": sum(w.expected_net_value for w in windows) * per_1000,
        "realised_net_value_per_1000": (
            sum(w.realised_net_value or 0.0 for w in known) * 1000.0 / sum(w.n_rows for w in known)
            if known
            else None
        ),
        "reference_expected_net_value_per_1000": reference["score"].get("expected_net_value_per_1000"),
        "expected_churners": float(sum(w.expected_positive_rate * w.n_rows for w in windows)),
    }
