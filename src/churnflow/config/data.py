"""Config schema: the `data` group (where raw input lives, how it is simulated, how the loader judges it).

Checked once, when built (``load_config`` or ``DataConfig(...)``): a bad value raises ``ValueError``
naming ``data.<field>``, so the loader and the serving path never re-check their settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

#: Where raw events come from: the built-in simulator, or an export dropped into ``raw_dir``.
SOURCES: tuple[str, ...] = ("simulated", "export")


def iso_date_ms(text: str, key: str) -> int:
    """An ISO date or instant (naive = UTC) → epoch milliseconds; ``ValueError`` naming ``key`` if not ISO."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{key}: not an ISO date: {text!r}") from exc
    return int(moment.replace(tzinfo=moment.tzinfo or UTC).timestamp() * 1000)


@dataclass
class DataConfig:
    """Raw input: where it lives, how it is generated (simulator) and how the loader validates it.

    Treat as immutable (``dataclasses.replace`` builds a checked copy): ``valid_ts_ms`` is parsed once.
    """

    raw_dir: str = "data"
    source: str = "simulated"  # simulated | export
    preset: str = "standard"  # simulator preset: tiny | mini | medium | small | standard | full
    seed: int = 42
    scenario: str = "baseline"  # simulator scenario: baseline | more_ads | app_errors | price_rise | drifted
    change_day: int = 0  # the day the scenario's changes start (0: the whole world)
    gzip: bool = True  # the simulator writes events.json.gz (the loader reads .gz either way)
    max_bad_line_share: float = 0.01  # the load stage fails above this share of quarantined lines
    block_bytes: int = 16_777_216  # JSON read block size for the fast path
    min_valid_ts: str = "2000-01-01"  # earlier `ts` (UTC date) is an impossible timestamp → quarantine
    max_valid_ts: str = "2100-01-01"  # later `ts` (UTC date) is an impossible timestamp → quarantine
    sort_bucket_rows: int = 4_000_000  # rows sorted in memory at once when writing the events table
    spill_dir: str = ""  # temporary block files ("" = the system temporary folder)
    max_error_examples: int = 5  # first failures named in the error when the bad-line share is exceeded

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"data.source must be one of {SOURCES}, got {self.source!r}")
        for name in ("block_bytes", "sort_bucket_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"data.{name} must be >= 1, got {getattr(self, name)}")
        if self.change_day < 0:
            raise ValueError(f"data.change_day must be >= 0, got {self.change_day}")
        if self.max_error_examples < 0:
            raise ValueError(f"data.max_error_examples must be >= 0, got {self.max_error_examples}")
        if not 0.0 <= self.max_bad_line_share <= 1.0:
            raise ValueError(f"data.max_bad_line_share must be in [0, 1], got {self.max_bad_line_share}")
        lo = iso_date_ms(self.min_valid_ts, "data.min_valid_ts")
        hi = iso_date_ms(self.max_valid_ts, "data.max_valid_ts")
        if lo >= hi:
            raise ValueError(
                f"data.min_valid_ts ({self.min_valid_ts}) must be before "
                f"data.max_valid_ts ({self.max_valid_ts})"
            )
        self._valid_ts_ms = (lo, hi)

    @property
    def valid_ts_ms(self) -> tuple[int, int]:
        """``[min_valid_ts, max_valid_ts)`` as epoch milliseconds (UTC), parsed when the config was built."""
        return self._valid_ts_ms
