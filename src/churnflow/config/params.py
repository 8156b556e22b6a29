"""Write ``params.yaml`` from ``conf/`` exactly as DVC's Hydra integration does on ``dvc exp run``."""

from __future__ import annotations

from pathlib import Path


def write_params(conf_dir: str | Path, output: str | Path, overrides: list[str] | None = None) -> None:
    """Compose ``conf_dir/config.yaml`` with ``overrides`` and dump it to ``output`` via DVC's own code."""
    from dvc.utils.hydra import compose_and_dump

    compose_and_dump(
        output_file=str(output),
        config_dir=str(Path(conf_dir).resolve()),
        config_module=None,
        config_name="config",
        plugins_path=str(Path(conf_dir).resolve().parent),
        overrides=overrides or [],
    )
