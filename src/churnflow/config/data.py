"""Config schema: the `data` group(s)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DataConfig:
    """Raw input: where it lives and, for the built-in simulator, how it is generated."""

    raw_dir: str = "data"
    source: str = "simulated"  # simulated | export
    preset: str = "mini"  # simulator preset: tiny | mini | medium | full
    seed: int = 42
    scenario: str = "default"
    gzip: bool = False
    max_bad_line_share: float = 0.01  # the load stage fails above this share of quarantined lines
    block_bytes: int = 16_777_216  # JSON read block size for the fast path
