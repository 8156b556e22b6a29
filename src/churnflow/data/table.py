"""The events table (``schema.EVENT_DTYPES``): built from valid raw rows, empty, or read back from disk."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from churnflow.data.errors import LoadInputError
from churnflow.data.schema import COLUMN_TO_RAW, EVENT_COLUMNS, EVENT_DTYPES, SOURCE_COLUMNS, TZ


def to_events(raw: pl.DataFrame) -> pl.DataFrame:
    """Valid raw rows (raw keys + ``source_file``/``source_line``) → the typed events-table columns.

    ``ts`` (epoch ms) and ``registration`` (epoch ms, rounded) become UTC datetimes; every other raw
    key is cast to its column's dtype. Rows keep their order.
    """
    exprs: list[pl.Expr] = []
    for col in EVENT_COLUMNS:
        if col == "ts":
            e = pl.col("ts").cast(pl.Datetime("ms")).dt.replace_time_zone(TZ)
        elif col == "registration":
            e = (
                pl.col("registration")
                .round(0)
                .cast(pl.Int64)
                .cast(pl.Datetime("ms"))
                .dt.replace_time_zone(TZ)
            )
        elif col in SOURCE_COLUMNS:
            e = pl.col(col).cast(EVENT_DTYPES[col])
        else:
            e = pl.col(COLUMN_TO_RAW[col]).cast(EVENT_DTYPES[col])
        exprs.append(e.alias(col))
    return raw.select(exprs)


def empty_events() -> pl.DataFrame:
    """An events table with no rows (the right columns and dtypes)."""
    return pl.DataFrame(schema=EVENT_DTYPES)


def read_events(path: str | Path, columns: list[str] | tuple[str, ...] | None = None) -> pl.DataFrame:
    """Read an events table written by the loader, with the contract dtypes (``EVENT_DTYPES``).

    ``columns`` (default: all of ``EVENT_COLUMNS``, in that order) reads only those, which keeps memory
    small for steps that need a few columns of a big table. Raises ``ValueError`` for a name that is
    not an events-table column and ``LoadInputError`` for a file that lacks one.
    """
    wanted = list(columns) if columns is not None else list(EVENT_COLUMNS)
    unknown = [c for c in wanted if c not in EVENT_DTYPES]
    if unknown:
        raise ValueError(f"not events-table columns: {unknown}")
    schema = pl.read_parquet_schema(path)
    missing = [c for c in wanted if c not in schema]
    if missing:
        raise LoadInputError(f"{path}: not an events table, missing columns {missing}")
    frame = pl.read_parquet(path, columns=wanted)
    return frame.select([pl.col(c).cast(EVENT_DTYPES[c]) for c in wanted])
