"""The loader's first pass: read every input once, decode, validate, quarantine, spill valid events.

Valid events go to small Parquet parts in a spill folder (identified users sorted by ``user_id``,
anonymous ones apart) with per-user counts for the sort; bad lines go to the quarantine with file,
line, reason and text. The next JSON block is read and decoded in a worker thread while the current
one is validated and spilled (Polars releases the GIL), so at most one block is decoded ahead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from churnflow.config.data import DataConfig
from churnflow.data.decode import decode_block, iter_blocks, parquet_blocks
from churnflow.data.discover import discover_files, file_kind
from churnflow.data.errors import LoadInputError
from churnflow.data.rules import Rule, bad_expr, reason_expr, rules
from churnflow.data.schema import PAGES
from churnflow.data.table import to_events
from churnflow.utils.progress import progress as progress_bar

#: Bytes of JSON per Parquet input row, to size Parquet batches like JSON blocks (at least 1,024 rows).
_PARQUET_ROW_BYTES = 512
_MIN_PARQUET_ROWS = 1024


@dataclass
class FileStats:
    """Per input file: non-blank lines read, quarantined, and exact duplicates dropped (by the sort)."""

    lines_read: int = 0
    quarantined: int = 0
    duplicates: int = 0


@dataclass
class FirstPass:
    """What the first pass leaves behind: spilled parts, counts and quarantined lines."""

    user_parts: list[Path] = field(default_factory=list)
    anon_parts: list[Path] = field(default_factory=list)
    user_counts: list[pl.DataFrame] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, FileStats] = field(default_factory=dict)
    unknown_pages: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)


def first_pass(inputs: list[Path], cfg: DataConfig, spill: Path, progress: bool) -> FirstPass:
    """Read every input once: decode, validate, quarantine, spill valid events in sorted parts.

    Raises ``LoadInputError`` for a missing or unsupported input, or two inputs with one source name.
    """
    files = discover_files(inputs)
    state = FirstPass()
    checks = rules(cfg.valid_ts_ms)
    total = sum(p.stat().st_size for p, _ in files)
    part_no = 0
    with progress_bar(total=total, unit="B", unit_scale=True, desc="load", disable=not progress) as bar:
        for path, source in files:
            if source in state.files:
                raise LoadInputError(f"{path}: two inputs share the source name {source!r}")
            state.files[source] = FileStats()
            if file_kind(path) == "parquet":
                block_rows = max(cfg.block_bytes // _PARQUET_ROW_BYTES, _MIN_PARQUET_ROWS)
                for decoded in parquet_blocks(path, block_rows):
                    _validate_block(decoded, source, checks, state, spill, part_no)
                    part_no += 1
                bar.update(path.stat().st_size)
                continue
            for block, first_line, decoded in _prefetch_decoded(path, cfg.block_bytes, bar):
                _validate_block(decoded, source, checks, state, spill, part_no, block, first_line)
                part_no += 1
    return state


def _prefetch_decoded(
    path: Path, block_bytes: int, progress: Any
) -> Iterator[tuple[bytes, int, pl.DataFrame]]:
    """Yield ``(block, first_line, decoded)`` in file order, reading and decoding the next block in a
    worker thread while the caller validates and spills the current one (Polars releases the GIL).

    At most one block is decoded ahead, so memory grows by one block only.
    """
    blocks = iter_blocks(path, block_bytes, progress)

    def next_decoded() -> tuple[bytes, int, pl.DataFrame] | None:
        item = next(blocks, None)
        if item is None:
            return None
        block, first_line, n_lines = item
        return block, first_line, decode_block(block, first_line, n_lines)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="churnflow-decode") as pool:
        pending = pool.submit(next_decoded)
        while (item := pending.result()) is not None:
            pending = pool.submit(next_decoded)
            yield item


def _validate_block(
    decoded: pl.DataFrame,
    source: str,
    checks: list[Rule],
    state: FirstPass,
    spill: Path,
    part_no: int,
    block: bytes | None = None,
    first_line: int = 1,
) -> None:
    """Split a decoded block into valid events (spilled, users and anonymous apart) and quarantined lines.

    Quarantined rows without their ``_text`` get it back from ``block`` (line ``_line - first_line``).
    """
    flagged = decoded.with_columns(bad_expr(checks))
    any_bad = bool(flagged["_bad"].any())
    bad = (flagged.filter(pl.col("_bad")) if any_bad else flagged.clear()).with_columns(
        pl.coalesce(pl.col("_pre"), reason_expr(checks)).alias("_reason")
    )
    if bad.height and block is not None and bad["_text"].null_count():
        raw_lines = block.split(b"\n")
        texts = [raw_lines[n - first_line].decode("utf-8", "replace").rstrip("\r") for n in bad["_line"]]
        bad = bad.with_columns(pl.Series("_text", texts, dtype=pl.String))
    stats = state.files[source]
    stats.lines_read += flagged.height
    if bad.height:
        stats.quarantined += bad.height
        state.reasons.update(bad["_reason"].to_list())
        state.quarantine.extend(
            {"source_file": source, "source_line": line, "reason": reason, "raw": text}
            for line, reason, text in zip(bad["_line"], bad["_reason"], bad["_text"], strict=True)
        )
    good = (flagged.filter(~pl.col("_bad")) if any_bad else flagged).with_columns(
        pl.lit(source).alias("source_file"), pl.col("_line").alias("source_line")
    )
    if good.height == 0:
        return
    known = good["page"].is_in(list(PAGES))
    if not known.all():
        state.unknown_pages.update(good.filter(~known)["page"].to_list())
    events = to_events(good)
    is_anon = events["user_id"] == ""
    if is_anon.any():
        users, anon = events.filter(~is_anon), events.filter(is_anon)
    else:
        users, anon = events, events.clear()
    if users.height:
        path = spill / f"u{part_no:07d}.parquet"
        users.sort("user_id").write_parquet(path, compression="lz4", row_group_size=16_384, statistics=True)
        state.user_parts.append(path)
        state.user_counts.append(users.group_by("user_id").len())
    if anon.height:
        path = spill / f"a{part_no:07d}.parquet"
        anon.write_parquet(path, compression="lz4")
        state.anon_parts.append(path)
