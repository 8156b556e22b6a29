"""DataConfig is checked once, where it is built: bad values fail by name before any loader code runs."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from churnflow.cli import app
from churnflow.config import DataConfig, compose_config, load_config


def test_defaults_are_valid_and_bounds_parsed_once() -> None:
    cfg = DataConfig()
    assert cfg.valid_ts_ms == (946_684_800_000, 4_102_444_800_000)  # 2000-01-01, 2100-01-01 UTC
    later = replace(cfg, min_valid_ts="2018-10-01T00:00:00+00:00")
    assert later.valid_ts_ms == (1_538_352_000_000, cfg.valid_ts_ms[1])


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"block_bytes": 0}, "data.block_bytes"),
        ({"sort_bucket_rows": -5}, "data.sort_bucket_rows"),
        ({"max_bad_line_share": 1.5}, "data.max_bad_line_share"),
        ({"max_bad_line_share": -0.01}, "data.max_bad_line_share"),
        ({"max_error_examples": -1}, "data.max_error_examples"),
        ({"min_valid_ts": "soon"}, "data.min_valid_ts"),
        ({"max_valid_ts": "2100-13-01"}, "data.max_valid_ts"),
        ({"min_valid_ts": "2030-01-01", "max_valid_ts": "2030-01-01"}, "data.min_valid_ts"),
        ({"source": "s3"}, "data.source"),
    ],
)
def test_bad_value_fails_naming_the_field(override: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        DataConfig(**override)


def test_load_config_checks_the_data_group(repo_root: Path, tmp_path: Path) -> None:
    raw = yaml.safe_load((repo_root / "params.yaml").read_text())
    raw["data"]["max_valid_ts"] = "1999-01-01"
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=r"data\.min_valid_ts .* must be before data\.max_valid_ts"):
        load_config(bad)


def test_cli_rejects_a_bad_share_as_a_parameter(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("")
    res = CliRunner().invoke(app, ["load", str(tmp_path / "x.json"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(
        app, ["load", str(tmp_path / "x.json"), "--out", str(tmp_path / "o"), "--max-bad-line-share", "2"]
    )
    assert res.exit_code == 2 and "max_bad_line_share" in res.output


@pytest.mark.parametrize("option", ["standard", "export"])
def test_conf_values_equal_dataclass_defaults(repo_root: Path, option: str) -> None:
    """conf/data and DataConfig must not disagree on a loader default (source/preset differ for export)."""
    composed = compose_config(repo_root / "conf", [f"data={option}"])["data"]
    defaults = asdict(DataConfig())
    assert set(composed) == set(defaults)
    differ = {k for k in defaults if composed[k] != defaults[k]}
    assert differ == (set() if option == "standard" else {"source", "preset", "gzip"})
