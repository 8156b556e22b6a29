"""Sparkify-compatible event simulator with a causal churn story and a ground-truth sidecar.

Public API: ``simulate_to_dir`` (write events + sidecar), ``load_ground_truth`` and
``oracle_probabilities`` (the ceiling every model is compared to), ``PRESETS`` / ``SCENARIOS``.
"""

from __future__ import annotations

from churnflow.simulate.engine import SimulationSummary, build_world, simulate_to_dir
from churnflow.simulate.presets import PRESETS, SCENARIOS, Preset, WorldParams
from churnflow.simulate.truth import load_ground_truth, oracle_probabilities, truth_path

__all__ = [
    "PRESETS",
    "SCENARIOS",
    "Preset",
    "SimulationSummary",
    "WorldParams",
    "build_world",
    "load_ground_truth",
    "oracle_probabilities",
    "simulate_to_dir",
    "truth_path",
]
