"""Sparkify-compatible event simulator with a causal churn story and a ground-truth sidecar.

Public API: ``simulate_to_dir`` (write events + sidecar), ``load_ground_truth``, ``oracle_probabilities``
(the Monte-Carlo ceiling every model is compared to: P(label = 1 | latent state at the cutoff)),
``latent_state_features``, ``PRESETS`` / ``SCENARIOS``.
"""

from __future__ import annotations

from churnflow.simulate.engine import SimulationSummary, build_world, simulate_to_dir
from churnflow.simulate.oracle import OracleResult, latent_state_features, oracle_probabilities
from churnflow.simulate.presets import PRESETS, SCENARIOS, Preset, Regime, WorldParams
from churnflow.simulate.truth import load_ground_truth, realised_hazard_probabilities, truth_path

__all__ = [
    "PRESETS",
    "SCENARIOS",
    "OracleResult",
    "Preset",
    "Regime",
    "SimulationSummary",
    "WorldParams",
    "build_world",
    "latent_state_features",
    "load_ground_truth",
    "oracle_probabilities",
    "realised_hazard_probabilities",
    "simulate_to_dir",
    "truth_path",
]
