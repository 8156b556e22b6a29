"""Config schema: the `monitor` group (drift reference, tests, alerts, dashboard; see docs/monitoring.md)."""

from __future__ import annotations

from dataclasses import dataclass

CORRECTIONS: tuple[str, ...] = ("bh", "bonferroni", "none")
NUMERIC_EFFECTS: tuple[str, ...] = ("wasserstein", "psi", "jensenshannon")
CATEGORICAL_EFFECTS: tuple[str, ...] = ("jensenshannon", "psi")


@dataclass
class MonitorConfig:
    """Drift monitoring: how the reference is summarised, which test each column gets, when to alert."""

    # reference summary
    sketch_points: int = 254  # numeric columns: support points kept (every distinct value if fewer)
    psi_bins: int = 10  # reference-quantile bins behind PSI / Jensen-Shannon and the online score
    discrete_max_values: int = 12  # numeric columns with at most this many distinct values: categorical tests
    max_categories: int = 20  # categorical columns: most frequent values kept, the rest → "__other__"
    calibration_splits: int = 60  # reference-vs-reference user splits behind the effect-size null laws
    # per-column tests
    large_window_users: int = 1000  # windows with at least this many users: effect sizes; fewer: KS / chi2
    alpha: float = 0.05  # level of the correction across features (and of the score test)
    correction: str = "bh"  # bh (Benjamini-Hochberg) | bonferroni | none
    numeric_effect: str = "wasserstein"  # large windows, numeric columns: wasserstein | psi | jensenshannon
    categorical_effect: str = "jensenshannon"  # large windows, categorical columns: jensenshannon | psi
    psi_floor: float = 0.1  # large windows: smallest effect that may alert, per effect size
    wasserstein_floor: float = 0.1  # W1 / reference standard deviation
    jensenshannon_floor: float = 0.1  # distance, base 2
    psi_epsilon: float = 1e-4  # floor of an empty bin's share (keeps PSI finite)
    drift_share_critical: float = 0.1  # share of drifting features from which feature drift is critical
    # multivariate: domain classifier (reference vs current)
    domain_rows: int = 2000  # reference rows kept for the classifier (half of them per check)
    domain_splits: int = 4  # reference-vs-reference splits behind its threshold
    domain_folds: int = 3  # user-grouped cross-validation folds
    domain_z: float = 3.0  # threshold = null mean + z · null sd
    # label-free performance estimate (CBPE) and realised performance
    performance_draws: int = 400  # label draws from the calibrated scores per window (predictive band)
    performance_alpha: float = 0.01  # level of the realised-AUC and churn-rate tests (BH across windows)
    auc_drop_critical: float = 0.05  # estimated AUC this far below the reference → critical
    recalibration_min_users: int = 10  # score-reference users needed to recalibrate (else as served)
    # alerts
    cooldown_days: int = 7  # the same alert is not raised again within this many days of data time
    # online (serving): rolling input-drift score over the last N scored rows
    online_window: int = 500
    online_alpha: float = 0.01  # a feature counts as drifting online above its null quantile at 1 - alpha
    online_reference_users: int = (
        1000  # users whose last event before a training cutoff give the online shares
    )
    # dashboard
    dashboard_features: int = 24  # drifting features plotted (largest effect first)

    def __post_init__(self) -> None:
        positive_ints = (
            "sketch_points",
            "psi_bins",
            "max_categories",
            "calibration_splits",
            "large_window_users",
            "domain_rows",
            "domain_splits",
            "performance_draws",
            "recalibration_min_users",
            "online_window",
            "online_reference_users",
            "dashboard_features",
        )
        for name in positive_ints:
            if getattr(self, name) < 1:
                raise ValueError(f"monitor.{name} must be >= 1, got {getattr(self, name)}")
        if not 2 <= self.psi_bins <= self.sketch_points <= 254:
            raise ValueError(
                f"monitor.psi_bins ({self.psi_bins}) must be >= 2 and <= monitor.sketch_points "
                f"({self.sketch_points}) <= 254"
            )
        if self.calibration_splits < 10 or self.domain_splits < 2:
            raise ValueError("monitor.calibration_splits must be >= 10 and monitor.domain_splits >= 2")
        if self.domain_folds < 2 or self.discrete_max_values < 1 or self.cooldown_days < 0:
            raise ValueError(
                "monitor.domain_folds must be >= 2, monitor.discrete_max_values >= 1, "
                "monitor.cooldown_days >= 0"
            )
        for name in ("alpha", "performance_alpha", "online_alpha", "drift_share_critical", "psi_epsilon"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"monitor.{name} must be in (0, 1), got {getattr(self, name)}")
        for name in (
            "psi_floor",
            "wasserstein_floor",
            "jensenshannon_floor",
            "domain_z",
            "auc_drop_critical",
        ):
            if getattr(self, name) < 0.0:
                raise ValueError(f"monitor.{name} must be >= 0, got {getattr(self, name)}")
        choices = (
            ("correction", CORRECTIONS),
            ("numeric_effect", NUMERIC_EFFECTS),
            ("categorical_effect", CATEGORICAL_EFFECTS),
        )
        for name, allowed in choices:
            if getattr(self, name) not in allowed:
                raise ValueError(f"monitor.{name} must be one of {allowed}, got {getattr(self, name)!r}")

    def floor(self, effect: str) -> float:
        """The smallest value of ``effect`` that may raise drift on a large window."""
        return float(getattr(self, f"{effect}_floor"))
