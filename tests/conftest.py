"""Shared test setup: every tool that writes under ~ writes under a temporary folder instead."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"


@pytest.fixture(autouse=True, scope="session")
def _isolated_homes(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Point MLflow, BentoML, DVC, Jupyter and matplotlib at a per-session temporary home."""
    home = tmp_path_factory.mktemp("homes")
    for var, sub in {
        "BENTOML_HOME": "bentoml",
        "DVC_SITE_CACHE_DIR": "dvc_site",
        "IPYTHONDIR": "ipython",
        "JUPYTER_DATA_DIR": "jupyter",
        "MPLCONFIGDIR": "mpl",
        "PROMETHEUS_MULTIPROC_DIR": "prometheus",
    }.items():
        path = home / sub
        path.mkdir(parents=True, exist_ok=True)
        os.environ[var] = str(path)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{home / 'mlflow.db'}"
    os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def shared_dir() -> Path:
    """The ../shared folder beside the project; tests that need it skip cleanly when it is absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip("../shared is not present")
    return SHARED_DIR
