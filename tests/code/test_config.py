"""Config tests: every group composes and validates; params.yaml always equals what conf/ composes to."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest
import yaml
from omegaconf.errors import ValidationError

from churnflow.config import Config, compose_config, load_config
from churnflow.config.params import write_params

CONF_GROUP_OPTIONS = {
    group: sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "conf" / group).glob("*.yaml"))
    for group in ("data", "labels", "features", "model", "tune", "train", "evaluate", "monitor", "serve")
}


def test_committed_params_equal_composed_conf(repo_root: Path, tmp_path: Path) -> None:
    """`dvc repro` (reads params.yaml) and `dvc exp run` (composes conf/) must never disagree."""
    composed = tmp_path / "params.yaml"
    write_params(repo_root / "conf", composed)
    committed = yaml.safe_load((repo_root / "params.yaml").read_text())
    assert committed == yaml.safe_load(composed.read_text()), "params.yaml is stale: run `make params`"


def _leaves(tree: object, prefix: str = "") -> dict[str, object]:
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _leaves(sub, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): list(tree) if isinstance(tree, tuple) else tree}


def test_dataclass_defaults_equal_the_default_composition(repo_root: Path) -> None:
    """A default lives in conf/ and in its dataclass: they must say the same (only the model family's own
    `fixed` parameters and search space are conf/-only)."""
    schema = _leaves(asdict(Config()))
    params = _leaves(yaml.safe_load((repo_root / "params.yaml").read_text()))
    family_only = ("model.fixed.", "model.search_space.")
    assert {k for k in params if k not in schema and not k.startswith(family_only)} == set()
    assert {k for k in schema if k not in params and not k.startswith(family_only)} == set()
    differ = {k: (schema[k], params[k]) for k in schema.keys() & params.keys() if schema[k] != params[k]}
    assert differ == {}, f"dataclass default vs conf/ default: {differ}"


@pytest.mark.parametrize(
    ("group", "option"), [(g, o) for g, options in CONF_GROUP_OPTIONS.items() for o in options]
)
def test_every_group_option_composes_and_validates(repo_root: Path, group: str, option: str) -> None:
    composed = compose_config(repo_root / "conf", [f"{group}={option}"])
    assert composed[group] is not None


def test_model_override_switches_family(repo_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "params.yaml"
    write_params(repo_root / "conf", out, ["model=xgboost", "tune.n_trials=5"])
    cfg = load_config(out)
    assert isinstance(cfg, Config)
    assert cfg.model.name == "xgboost"
    assert cfg.tune.n_trials == 5


def test_typo_in_params_fails_with_key_name(repo_root: Path, tmp_path: Path) -> None:
    raw = yaml.safe_load((repo_root / "params.yaml").read_text())
    raw["tune"]["n_trails"] = 3
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(Exception, match="n_trails"):
        load_config(bad)


def test_wrong_type_in_params_fails(repo_root: Path, tmp_path: Path) -> None:
    raw = yaml.safe_load((repo_root / "params.yaml").read_text())
    raw["tune"]["n_trials"] = "many"
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValidationError, match="n_trials"):
        load_config(bad)
