"""A fresh clone has no DVC remote: `make run` regenerates data/ with the simulator, and its DVC hash must be
the one committed in data.dvc."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from churnflow.config import load_config
from churnflow.simulate import simulate_to_dir

pytestmark = pytest.mark.slow


def _dvc_hash_of(raw_dir: Path) -> str:
    """`dvc add` the folder in a scratch DVC project and return the md5 it records."""
    dvc = str(Path(sys.executable).parent / "dvc")
    subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=raw_dir.parent, check=True)
    subprocess.run([dvc, "add", "-q", raw_dir.name], cwd=raw_dir.parent, check=True)
    recorded = yaml.safe_load((raw_dir.parent / f"{raw_dir.name}.dvc").read_text())
    return str(recorded["outs"][0]["md5"])


def _committed_hash(repo_root: Path) -> str:
    return str(yaml.safe_load((repo_root / "data.dvc").read_text())["outs"][0]["md5"])


def test_regenerated_default_data_matches_data_dvc(repo_root: Path, tmp_path: Path) -> None:
    cfg = load_config(repo_root / "params.yaml")
    assert cfg.data.source == "simulated"
    raw = tmp_path / "data"
    simulate_to_dir(
        cfg.data.preset,
        cfg.data.seed,
        raw,
        scenario=cfg.data.scenario,
        gzip=cfg.data.gzip,
        progress=False,
        change_day=cfg.data.change_day,
    )
    assert _dvc_hash_of(raw) == _committed_hash(repo_root), "regenerated data/ differs from data.dvc"


def test_other_seed_gives_another_hash(repo_root: Path, tmp_path: Path) -> None:
    """The check above can fail: other data hash differently."""
    raw = tmp_path / "data"
    simulate_to_dir("tiny", 1, raw, progress=False)
    assert _dvc_hash_of(raw) != _committed_hash(repo_root)
