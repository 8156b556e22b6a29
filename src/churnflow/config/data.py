"""Config schema: the `data` group(s)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DataConfig:
    """Raw input: where it lives, how it is generated (simulator) and how the loader validates it."""

    raw_dir: str = "data"
    source: str = "simulated"  # simulated | export
    preset: str = "mini"  # simulator preset: tiny | mini | medium | full
    seed: int = 42
    scenario: str = "default"
    gzip: bool = False
    max_bad_line_share: float = 0.01  # the load stage fails above this share of quarantined lines
    block_bytes: int = 16_777_216  # JSON read block size for the fast path
    min_valid_ts: str = "2000-01-01"  # earlier `ts` (UTC date) is an impossible timestamp → quarantine
    max_valid_ts: str = "2100-01-01"  # later `ts` (UTC date) is an impossible timestamp → quarantine
    sort_bucket_rows: int = 4_000_000  # rows sorted in memory at once when writing the events table
    spill_dir: str = ""  # temporary block files ("" = the system temporary folder)
    max_error_examples: int = 5  # first failures named in the error when the bad-line share is exceeded
