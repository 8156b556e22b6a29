"""Rolling input-drift score for the serving path, on the same fixed bins as the batch monitor.

``RollingDrift.from_reference(reference)`` reads the reference's ``online`` section (built by the
``drift_baseline`` stage): for each watched feature the coarse bins of its batch profile (right-closed
edges, a null bin first), the reference shares over them and a per-feature PSI threshold. ``update``
adds scored rows to a ring buffer of the last ``window`` rows and returns the **share of watched
features whose PSI over the buffer exceeds their threshold** (0 = like the reference; each feature's
threshold is its calibrated null quantile at ``1 − monitor.online_alpha``, so about that share of
features exceed it by chance on a full window of undrifted traffic).

The reference shares come from features at each reference user's *last event before* the reference
cutoffs — what the service computes for a request without an explicit cutoff — and the ``recency`` family
is left out (at request time it is ~0 by construction). While fewer than ``window`` rows have been seen,
the thresholds are rescaled to the rows seen (the null law is ``(1/n_ref + 1/n) · scale · χ²``).

Cost per row: one ``searchsorted`` per feature and two count updates — O(features · bins), no allocation
proportional to the window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


class RollingDrift:
    """Rolling share of drifting input features over the last ``window`` scored rows (thread-unsafe)."""

    def __init__(
        self,
        feature_names: Sequence[str],
        edges: Sequence[Sequence[float]],
        shares: Sequence[Sequence[float]],
        thresholds: Sequence[float],
        window: int,
        epsilon: float = 1e-4,
        n_reference: float | None = None,
    ) -> None:
        if not (len(feature_names) == len(edges) == len(shares) == len(thresholds)):
            raise ValueError("RollingDrift: feature_names, edges, shares and thresholds differ in length")
        if window < 1:
            raise ValueError(f"RollingDrift: window must be >= 1, got {window}")
        self.feature_names = list(feature_names)
        self.window = int(window)
        self.epsilon = float(epsilon)
        n_features = len(self.feature_names)
        self._n_bins = np.array([len(e) + 2 for e in edges], dtype=np.int64)  # null + len(edges)+1 values
        width = int(self._n_bins.max()) if n_features else 1
        # edges padded with +inf: searchsorted(…, side="left") then never passes a feature's last bin
        self._edges = np.full((n_features, max(width - 2, 1)), np.inf)
        for i, e in enumerate(edges):
            self._edges[i, : len(e)] = e
        self._reference = np.zeros((n_features, width))
        for i, s in enumerate(shares):
            if len(s) != self._n_bins[i]:
                raise ValueError(
                    f"RollingDrift: {self.feature_names[i]!r} has {len(s)} shares for {self._n_bins[i]} bins"
                )
            self._reference[i, : len(s)] = s
        self._valid = np.arange(width)[None, :] < self._n_bins[:, None]
        self._ref_floor = np.maximum(self._reference, self.epsilon)
        self._thresholds = np.asarray(thresholds, dtype=np.float64)
        self._n_reference = float(n_reference) if n_reference else float("inf")
        self._counts = np.zeros((n_features, width), dtype=np.int64)
        self._buffer = np.zeros((self.window, n_features), dtype=np.int16)
        self._rows = np.arange(n_features)
        self._seen = 0
        self._columns: dict[tuple[str, ...], np.ndarray] = {}

    @classmethod
    def from_reference(cls, reference: Mapping[str, Any]) -> RollingDrift:
        """Build from a drift reference dict (its ``online`` section); names the missing key."""
        online = reference.get("online") if isinstance(reference, Mapping) else None
        if not isinstance(online, Mapping):
            raise ValueError("drift reference: no 'online' section (re-run the drift_baseline stage)")
        for key in ("features", "edges", "shares", "thresholds", "window"):
            if key not in online:
                raise ValueError(f"drift reference: online section lacks {key!r}")
        return cls(
            online["features"],
            online["edges"],
            online["shares"],
            online["thresholds"],
            int(online["window"]),
            float(online.get("epsilon", 1e-4)),
            online.get("n_reference"),
        )

    @property
    def n_seen(self) -> int:
        """Rows added so far (the buffer holds the last ``min(n_seen, window)`` of them)."""
        return self._seen

    def _bins(self, matrix: np.ndarray, feature_names: Sequence[str]) -> np.ndarray:
        """(rows, watched features) bin index per value: 0 = null/NaN/inf or absent, 1… value bins."""
        key = tuple(feature_names)
        columns = self._columns.get(key)
        if columns is None:
            position = {name: j for j, name in enumerate(feature_names)}
            columns = np.array([position.get(n, -1) for n in self.feature_names], dtype=np.int64)
            self._columns[key] = columns
        x = np.asarray(matrix, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.shape[1] != len(feature_names):
            raise ValueError(f"matrix has {x.shape[1]} columns for {len(feature_names)} feature names")
        values = np.where(columns[None, :] >= 0, x[:, np.maximum(columns, 0)], np.nan)
        finite = np.isfinite(values)
        # bin b (1-based) of a value: number of edges strictly below it + 1 (right-closed bins)
        below = (values[:, :, None] > self._edges[None, :, :]).sum(axis=2)
        return np.where(finite, below + 1, 0).astype(np.int16)

    def update(self, matrix: np.ndarray, feature_names: list[str]) -> float:
        """Add scored rows (``matrix`` columns named by ``feature_names``; extra columns ignored, missing
        watched features count as null) and return the current drift score in [0, 1]."""
        for row in self._bins(matrix, feature_names):
            slot = self._seen % self.window
            if self._seen >= self.window:
                self._counts[self._rows, self._buffer[slot]] -= 1
            self._buffer[slot] = row
            self._counts[self._rows, row] += 1
            self._seen += 1
        return self.score()

    def feature_psi(self) -> np.ndarray:
        """PSI of each watched feature over the rows in the buffer (zeros before any row)."""
        n = min(self._seen, self.window)
        if n == 0:
            return np.zeros(len(self.feature_names))
        current = np.maximum(self._counts / n, self.epsilon)
        terms = np.where(self._valid, (current - self._ref_floor) * np.log(current / self._ref_floor), 0.0)
        return np.maximum(terms, 0.0).sum(axis=1)

    def score(self) -> float:
        """Share of watched features whose PSI over the buffer exceeds their (size-scaled) threshold."""
        n = min(self._seen, self.window)
        if n == 0 or not self.feature_names:
            return 0.0
        scale = (1.0 / n + 1.0 / self._n_reference) / (1.0 / self.window + 1.0 / self._n_reference)
        return float(np.mean(self.feature_psi() > self._thresholds * scale))

    def drifting_features(self) -> list[str]:
        """Names of the features above their threshold now."""
        n = min(self._seen, self.window)
        if n == 0:
            return []
        scale = (1.0 / n + 1.0 / self._n_reference) / (1.0 / self.window + 1.0 / self._n_reference)
        above = self.feature_psi() > self._thresholds * scale
        return [name for name, hit in zip(self.feature_names, above, strict=True) if hit]
