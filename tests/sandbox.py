"""The isolated environment of a throw-away project copy (end-to-end tests and pipeline benchmarks).

Plain module (no pytest), so ``benchmarks/`` can import it from the repository root as well.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: the venv whose tools (python, dvc, bentoml, churnflow) the copy's stages run
VENV_BIN = Path(sys.executable).parent


def sandbox_env(dest: Path, who: str) -> dict[str, str]:
    """Environment for commands run in the copy at ``dest``: the venv first on PATH, its own MLflow database
    and BentoML/DVC/Jupyter/Matplotlib homes under ``dest/.homes`` (created), git identity ``who``.

    MLflow variables of the calling process are dropped: in-process MLflow calls export them.
    """
    homes = dest / ".homes"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(
        {
            "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            "MLFLOW_TRACKING_URI": f"sqlite:///{dest / 'mlflow.db'}",
            "BENTOML_HOME": str(homes / "bentoml"),
            "DVC_SITE_CACHE_DIR": str(homes / "dvc_site"),
            "IPYTHONDIR": str(homes / "ipython"),
            "JUPYTER_DATA_DIR": str(homes / "jupyter"),
            "MPLCONFIGDIR": str(homes / "mpl"),
            "PYSPARK_PYTHON": sys.executable,
            "GIT_AUTHOR_NAME": who,
            "GIT_AUTHOR_EMAIL": f"{who}@localhost",
            "GIT_COMMITTER_NAME": who,
            "GIT_COMMITTER_EMAIL": f"{who}@localhost",
            "DVC_NO_ANALYTICS": "1",
        }
    )
    for sub in ("bentoml", "dvc_site", "ipython", "jupyter", "mpl"):
        (homes / sub).mkdir(parents=True, exist_ok=True)
    return env
