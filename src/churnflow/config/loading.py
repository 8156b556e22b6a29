"""Load ``params.yaml`` (or compose ``conf/``) and validate it against :class:`Config`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from churnflow.config.schema import Config


def _validate(raw: Any) -> Config:
    """Merge a plain config onto the structured schema: unknown keys and wrong types fail by name."""
    schema = OmegaConf.structured(Config)
    merged = OmegaConf.merge(schema, raw)
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def load_config(params_path: str | Path = "params.yaml") -> Config:
    """Read a composed ``params.yaml`` and return the validated :class:`Config`."""
    raw = OmegaConf.load(Path(params_path))
    return _validate(raw)


def compose_config(conf_dir: str | Path = "conf", overrides: list[str] | None = None) -> dict[str, Any]:
    """Compose ``conf/config.yaml`` with Hydra overrides into a plain dict (as DVC writes params.yaml)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base=None):
        cfg = compose(config_name="config", overrides=overrides or [])
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    _validate(container)
    return container


def to_container(cfg: Config) -> dict[str, Any]:
    """A validated config back to plain dicts (for logging to MLflow or writing YAML)."""
    out = OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)
    assert isinstance(out, dict)
    return out
