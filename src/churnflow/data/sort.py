"""The loader's second pass: the on-disk sort and de-duplication of the spilled parts.

Identified users' events are sorted in contiguous ``user_id`` ranges small enough for memory and
appended to the output range by range, so the whole table is sorted by ``schema.SORT_KEYS`` (a total
order: same input, same bytes). Exact duplicates (``schema.DEDUP_KEYS`` equal) are dropped, keeping
the first by source position, and counted against the file that held the dropped copy.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from churnflow.data.first_pass import FileStats
from churnflow.data.schema import DEDUP_KEYS, SORT_KEYS
from churnflow.data.table import empty_events

_ROW_GROUP_ROWS = 1_048_576


def user_ranges(counts: list[pl.DataFrame], bucket_rows: int) -> list[tuple[str, str]]:
    """Contiguous, inclusive ``user_id`` ranges holding at most ~``bucket_rows`` (>= 1) events each.

    ``counts``: frames of ``user_id``, ``len`` (a user may appear in several).
    """
    if not counts:
        return []
    per_user = pl.concat(counts).group_by("user_id").agg(pl.col("len").sum()).sort("user_id")
    bucket = (per_user["len"].cum_sum() - per_user["len"]) // bucket_rows
    ranges = (
        per_user.with_columns(bucket.alias("b"))
        .group_by("b", maintain_order=True)
        .agg(pl.col("user_id").first().alias("lo"), pl.col("user_id").last().alias("hi"))
    )
    return list(zip(ranges["lo"].to_list(), ranges["hi"].to_list(), strict=True))


def sorted_unique(frame: pl.DataFrame, files: dict[str, FileStats]) -> pl.DataFrame:
    """Sort by ``SORT_KEYS`` and drop exact duplicates (keeping the first), counting them per file."""
    frame = frame.sort(list(SORT_KEYS))
    # exact duplicates share (user_id, ts, session_id, item_in_session), so after the sort they sit in
    # runs of equal keys: only rows in such runs need the full-row comparison
    keys = list(SORT_KEYS[:4])
    same_prev = pl.all_horizontal([pl.col(k).eq_missing(pl.col(k).shift(1)) for k in keys])
    same_next = pl.all_horizontal([pl.col(k).eq_missing(pl.col(k).shift(-1)) for k in keys])
    in_run = frame.select((same_prev | same_next).fill_null(False)).to_series()
    first = pl.Series("first", [True] * frame.height, dtype=pl.Boolean)
    if in_run.any():
        run_idx = in_run.arg_true()
        run_first = frame.filter(in_run).select(pl.struct(list(DEDUP_KEYS)).is_first_distinct()).to_series()
        first = first.scatter(run_idx, run_first)
    if first.all():
        return frame
    dups = frame.filter(~first)
    for source, n in dups.group_by("source_file").len().iter_rows():
        files[source].duplicates += n
    return frame.filter(first)


def write_sorted(
    parts: list[Path], ranges: list[tuple[str, str]] | None, files: dict[str, FileStats], target: Path
) -> int:
    """Write the sorted, de-duplicated events of ``parts`` to ``target`` range by range; rows written.

    ``ranges`` None: one range, ordered by time then source position (the anonymous events). Range k
    is compressed and written by a worker thread while range k+1 is read and sorted; ranges are
    written strictly in order and at most one range waits to be written, so memory stays bounded.
    """
    schema = empty_events().to_arrow().schema
    written = 0
    with (
        pq.ParquetWriter(target, schema, compression="zstd", write_statistics=True) as writer,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="churnflow-write") as pool,
    ):
        if not parts:
            writer.write_table(schema.empty_table())
            return 0

        def write(frame: pl.DataFrame) -> None:
            writer.write_table(frame.to_arrow().cast(schema), row_group_size=_ROW_GROUP_ROWS)

        pending: Future[None] | None = None
        scan = pl.scan_parquet(parts)
        for lo, hi in ranges if ranges is not None else [(None, None)]:
            query = scan if lo is None else scan.filter(pl.col("user_id").is_between(pl.lit(lo), pl.lit(hi)))
            frame = sorted_unique(query.collect(), files)
            if lo is None:
                frame = frame.sort(["ts", *SORT_KEYS[2:]])
            written += frame.height
            if pending is not None:
                pending.result()
            pending = pool.submit(write, frame)
            del frame
        if pending is not None:
            pending.result()
    return written
