"""Load raw Sparkify event logs into the typed, sorted, de-duplicated events table (the orchestration).

Inputs: files or folders of JSON lines (plain or ``.gz``) and Parquet. Every non-blank line ends up in
exactly one place: the events table, the anonymous (empty ``userId``) table, the quarantine (with file,
line and reason) or the duplicate count. Invariant, checked by the tests:
``loaded + quarantined + duplicates == lines_read``.

Steps, one module each: :mod:`~churnflow.data.discover` (which files), :mod:`~churnflow.data.first_pass`
(decode with :mod:`~churnflow.data.decode`, judge with :mod:`~churnflow.data.rules`, quarantine, spill),
:mod:`~churnflow.data.quality` (report, bad-share gate), :mod:`~churnflow.data.sort` (on-disk sort and
de-duplication). Memory stays bounded by ``cfg.block_bytes`` and ``cfg.sort_bucket_rows``.

The names other modules import from here (``EVENT_DTYPES``, ``RAW_DTYPES``, ``SORT_KEYS``,
``normalize_records``, ``read_events``, the errors, ...) are re-exported from their own modules.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from churnflow.config.data import DataConfig
from churnflow.data.discover import JSON_SUFFIXES, PARQUET_SUFFIXES, discover_files
from churnflow.data.errors import EventValidationError, LoadInputError, TooManyBadLinesError
from churnflow.data.first_pass import first_pass
from churnflow.data.quality import (
    enforce_bad_share,
    quality_report,
    quality_summary,
    sorted_quarantine,
    write_quarantine,
)
from churnflow.data.records import normalize_records
from churnflow.data.schema import (
    AUTH_DTYPE,
    DEDUP_KEYS,
    EVENT_DTYPES,
    LEVEL_DTYPE,
    METHOD_DTYPE,
    RAW_DTYPES,
    SORT_KEYS,
)
from churnflow.data.sort import user_ranges, write_sorted
from churnflow.data.table import empty_events, read_events
from churnflow.utils.io import atomic_path, write_json

__all__ = [
    "AUTH_DTYPE",
    "DEDUP_KEYS",
    "EVENT_DTYPES",
    "JSON_SUFFIXES",
    "LEVEL_DTYPE",
    "METHOD_DTYPE",
    "PARQUET_SUFFIXES",
    "RAW_DTYPES",
    "SORT_KEYS",
    "EventValidationError",
    "LoadInputError",
    "LoadOutputs",
    "LoadResult",
    "TooManyBadLinesError",
    "discover_files",
    "empty_events",
    "load_events",
    "load_events_to_files",
    "load_to_outputs",
    "normalize_records",
    "quality_summary",
    "read_events",
    "write_quarantine",
]


@dataclass
class LoadResult:
    """Loaded events (users), anonymous events, quarantined lines and the data-quality report."""

    events: pl.DataFrame
    anonymous: pl.DataFrame
    quarantine: list[dict[str, Any]]
    quality: dict[str, Any]


@dataclass(frozen=True)
class LoadOutputs:
    """Where a load writes: events table, anonymous events (Parquet), quarantine (JSON lines), report."""

    events: Path
    anonymous: Path
    quarantine: Path
    quality: Path

    @classmethod
    def in_folder(cls, out: Path) -> LoadOutputs:
        """The ``churnflow load --out`` layout: events.parquet, anonymous_events.parquet, ... in ``out``."""
        return cls(
            out / "events.parquet",
            out / "anonymous_events.parquet",
            out / "quarantine.jsonl",
            out / "quality.json",
        )


def load_events_to_files(
    inputs: list[Path],
    cfg: DataConfig,
    events_path: Path,
    anonymous_path: Path,
    *,
    check_bad_share: bool = True,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Stream ``inputs`` into ``events_path`` and ``anonymous_path`` (Parquet, written atomically).

    Returns ``(quarantine rows, quality report)``. Memory is bounded by ``cfg.block_bytes`` and
    ``cfg.sort_bucket_rows``. Raises ``TooManyBadLinesError`` before writing anything when the
    quarantined share exceeds ``cfg.max_bad_line_share`` (and ``check_bad_share``).
    """
    with tempfile.TemporaryDirectory(prefix="churnflow-load-", dir=cfg.spill_dir or None) as tmp:
        state = first_pass(inputs, cfg, Path(tmp), progress)
        if check_bad_share:
            enforce_bad_share(state, cfg)
        # two ranges are in memory at once (one sorted, one being written): halve them to stay in budget
        ranges = user_ranges(state.user_counts, max(cfg.sort_bucket_rows // 2, 1))
        with atomic_path(events_path) as ev_tmp, atomic_path(anonymous_path) as an_tmp:
            n_events = write_sorted(state.user_parts, ranges, state.files, ev_tmp)
            n_anon = write_sorted(state.anon_parts, None, state.files, an_tmp)
    return sorted_quarantine(state.quarantine), quality_report(state, n_events, n_anon)


def load_to_outputs(
    inputs: list[Path], cfg: DataConfig, outputs: LoadOutputs, *, progress: bool = True
) -> dict[str, Any]:
    """Load ``inputs`` and write all four ``outputs`` atomically; returns the quality report.

    Raises ``TooManyBadLinesError`` (nothing written) when too many lines are quarantined.
    """
    rows, report = load_events_to_files(inputs, cfg, outputs.events, outputs.anonymous, progress=progress)
    write_quarantine(rows, outputs.quarantine)
    write_json(outputs.quality, report)
    return report


def load_events(
    inputs: list[Path], cfg: DataConfig, *, check_bad_share: bool = True, progress: bool = False
) -> LoadResult:
    """Load ``inputs`` into memory: events (``EVENT_COLUMNS``, sorted), anonymous events, quarantine, quality.

    Same rules and invariant as :func:`load_events_to_files` (which the stage uses for bounded memory).
    """
    with tempfile.TemporaryDirectory(prefix="churnflow-load-out-", dir=cfg.spill_dir or None) as tmp:
        ev, an = Path(tmp) / "events.parquet", Path(tmp) / "anonymous.parquet"
        quarantine, quality = load_events_to_files(
            inputs, cfg, ev, an, check_bad_share=check_bad_share, progress=progress
        )
        events, anonymous = read_events(ev), read_events(an)
    return LoadResult(events=events, anonymous=anonymous, quarantine=quarantine, quality=quality)
