"""`bentoml build` of the real bentofile (no Docker engine here) and the Dockerfile it generates."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from churnflow.features import feature_names
from tests.serving_helpers import online_drift_reference, package, register, serving_config, train_tiny_model

pytestmark = pytest.mark.slow


def _pins(text: str) -> set[str]:
    return set(re.findall(r"^([A-Za-z0-9_.\-\[\]]+==[^\s\\;]+)", text, re.M))


def test_bentoml_build_bundles_the_model_and_a_sane_dockerfile(tmp_path: Path, repo_root: Path) -> None:
    cfg = serving_config("build_churn")
    model, _ = train_tiny_model(feature_names(cfg.features), tmp_path / "model")
    register(cfg, tmp_path / "model", "champion")
    tag = package(
        cfg, tmp_path / "model", None, online_drift_reference(model.feature_names[:3])
    ).record.bento_model_tag
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURNFLOW_")}
    env["CHURNFLOW_BENTO_MODEL"] = tag  # no API keys: building needs none
    done = subprocess.run(
        [str(Path(sys.executable).parent / "bentoml"), "build", "--output", "tag"],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    bento_tag = done.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    import bentoml

    bento = Path(bentoml.get(bento_tag).path)
    info = yaml.safe_load((bento / "bento.yaml").read_text())
    service = info["services"][0]
    assert [m["tag"] for m in service["models"]] == [tag], "the packaged model travels with the Bento"
    assert service["config"]["metrics"] == {"enabled": False}, "BentoML's per-path metrics are off"
    assert (bento / "src" / "src" / "churnflow" / "serving" / "service.py").is_file()

    dockerfile = (bento / "env" / "docker" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", dockerfile, re.M), "the project's Python"
    assert (
        "ENV CHURNFLOW_BENTO_MODEL=$CHURNFLOW_BENTO_MODEL" in dockerfile
        and f"CHURNFLOW_BENTO_MODEL={tag}" in dockerfile
    )
    assert "ARG PYTHONPATH=src" in dockerfile and "ENV OMP_NUM_THREADS" in dockerfile
    assert "CHURNFLOW_API_KEYS" not in dockerfile and "INSECURE" not in dockerfile, (
        "no secrets, no insecure mode"
    )
    assert re.search(r"^USER bentoml$", dockerfile, re.M), "the server does not run as root"
    assert "EXPOSE 3000" in dockerfile and "ENTRYPOINT" in dockerfile
    requirements = (bento / "env" / "python" / "requirements.txt").read_text()
    lock = (repo_root / "requirements.lock").read_text()
    assert _pins(requirements) == _pins(lock) and len(_pins(lock)) > 50, "exactly the locked versions"
    assert requirements.count("--hash=sha256:") == lock.count("--hash=sha256:"), "hash-pinned"
