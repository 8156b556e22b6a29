"""A throw-away copy of the repository with a tiny simulated world in its own folder, for real `dvc repro`."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from churnflow.config import load_config
from churnflow.config.params import write_params
from tests.sandbox import sandbox_env

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Overrides that keep the end-to-end pipeline to about a minute on 2 cores. The 63-day tiny world cannot
#: hold purged splits with the default 35-day label window: a 7-day horizon and 7 inactive days (labels
#: known 14 days after their cutoff) leave tuning-train, validation and 3 test cutoffs.
TINY_OVERRIDES = [
    "data=tiny",  # its own raw folder, data.raw_dir = worlds/tiny (the default world's data/ is not copied)
    "data.seed=7",
    "labels.horizon_days=7",
    "labels.inactivity_days=7",
    "train.n_test_cutoffs=3",
    "tune.n_trials=3",
    "evaluate.bootstrap_samples=50",
    "evaluate.shap_sample=100",
    "evaluate.oracle_draws=50",
    "train.promote_min_oracle_ratio=0.0",
]


@dataclass
class PipelineRepo:
    """A git + DVC copy of the project in a temporary folder and the environment to run it with."""

    root: Path
    env: dict[str, str]

    @property
    def raw_dir(self) -> Path:
        """The composed config's raw-data folder (``data.raw_dir``)."""
        return self.root / load_config(self.root / "params.yaml").data.raw_dir

    def run(self, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            list(args), cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} failed ({proc.returncode})\n--- stdout\n{proc.stdout[-4000:]}"
                f"\n--- stderr\n{proc.stderr[-6000:]}"
            )
        return proc


def _project_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    return [f for f in out if f and (REPO_ROOT / f).is_file()]


def make_pipeline_repo(dest: Path, overrides: list[str]) -> PipelineRepo:
    """Copy the project's tracked files to ``dest``, compose params with ``overrides``, init git + DVC."""
    for rel in _project_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, target)
    write_params(dest / "conf", dest / "params.yaml", overrides)
    env = sandbox_env(dest, "churnflow-test")
    (dest / ".gitignore").write_text((dest / ".gitignore").read_text() + "/.homes/\n")
    repo = PipelineRepo(root=dest, env=env)
    repo.run("git", "init", "-q")
    repo.run("git", "add", "-A")
    repo.run("git", "commit", "-qm", "copy")
    return repo


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineRepo]:
    """The project with the `tiny` simulated data, after one full `dvc repro`."""
    repo = make_pipeline_repo(tmp_path_factory.mktemp("pipeline") / "churnflow", TINY_OVERRIDES)
    (repo.root / "data.dvc").unlink(missing_ok=True)  # tracks the default world, which is not copied
    repo.run("git", "add", "-A")
    repo.run("git", "commit", "-qm", "tiny world only")
    repo.run("python", "stages/bootstrap_data.py", "--params", "params.yaml")  # as `make data` does
    assert (repo.raw_dir / "events.json").is_file()
    repo.run("dvc", "repro")
    yield repo
