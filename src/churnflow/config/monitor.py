"""Config schema: the `monitor` group(s)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class MonitorConfig:
    """Drift monitoring: reference rows, PSI bins and alert thresholds (see docs/monitoring.md)."""

    psi_bins: int = 10  # quantile bins per numeric feature (edges from the reference)
    psi_warn: float = 0.1  # PSI at or above → warn
    psi_alert: float = 0.25  # PSI at or above → alert
    psi_epsilon: float = 1e-4  # floor for an empty bin's share (keeps PSI finite)
    n_features: int = 30  # monitor the top-N features by model importance (all if no importance)
    reference_split: str = "train"  # train: all cutoffs except the model's test cutoffs | all
    score_rows: str = "test"  # score reference from: test (out-of-sample, test cutoffs) | reference rows
    cutoff: str = (
        "export_end"  # monitor: features at export_end (last ts + 1 ms, all users) | user_last_event
    )
    max_categories: int = 20  # categorical features: most frequent values kept, the rest → "__other__"
