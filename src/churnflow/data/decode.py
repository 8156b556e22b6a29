"""Decoders: raw input → frames of raw-key columns (``schema.RAW_DTYPES``) plus line bookkeeping.

Three decoders, fastest first: a whole block of JSON lines by ``pl.read_ndjson`` with a strict schema
(:func:`decode_block`); lines in pieces by ``str.json_decode`` (:func:`_decode_fast`); line by line
with msgspec, which is strict about types and names the failing key (:func:`_decode_slow`). Lines
holding values Polars would coerce instead of reject (a number where a string is expected, a boolean,
a fraction in an integer field) go straight to msgspec, found by a cheap regular expression. Parquet
input (raw keys or events-table columns) is converted by :func:`parquet_blocks`.

A decoded frame has ``_line`` (1-based line number), ``_text`` (the line, or null when the block was
decoded whole), ``_pre`` (a reason found while decoding, else null), ``_null`` (the line is JSON
``null``) and every raw key. Nothing here judges values: that is :mod:`churnflow.data.rules`.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pyarrow.parquet as pq

from churnflow.data.errors import LoadInputError
from churnflow.data.schema import COLUMN_TO_RAW, EVENT_DTYPES, RAW_DTYPES, RAW_KEYS, RAW_TO_COLUMN, RAW_TYPES

_STRING_KEYS = tuple(k for k, t in RAW_TYPES.items() if t is str)
_INT_KEYS = tuple(k for k, t in RAW_TYPES.items() if t is int)
_FLOAT_KEYS = tuple(k for k, t in RAW_TYPES.items() if t is float)
#: String keys whose events-table column is an Enum/Categorical: kept Categorical after block decoding.
_CATEGORY_KEYS = tuple(
    k for k in _STRING_KEYS if isinstance(EVENT_DTYPES[RAW_TO_COLUMN[k]], (pl.Categorical, pl.Enum))
)
_RAW_STRUCT = pl.Struct(RAW_DTYPES)
#: Block decoding schema: ``read_ndjson`` raises on any value of the wrong JSON type with these dtypes.
_STRICT_DTYPES: dict[str, pl.DataType] = {
    k: (pl.Categorical() if k in _STRING_KEYS else dtype) for k, dtype in RAW_DTYPES.items()
}
#: Lines whose values Polars would coerce instead of reject go to the strict (msgspec) path.
_SUSPECT = re.compile(
    r'"(?:' + "|".join(_STRING_KEYS) + r')"\s*:\s*[-0-9tf\[{]'
    r'|"(?:' + "|".join(_INT_KEYS) + r')"\s*:\s*-?[0-9]+[.eE]'
    r'|"(?:' + "|".join(_INT_KEYS + _FLOAT_KEYS) + r')"\s*:\s*[tf"\[{]'
).pattern
_BOOKKEEPING = ("_line", "_text", "_pre", "_null")
#: Lines at or below which a piece that fails to decode goes line by line.
_MIN_SPLIT = 512

#: The strict per-record decoding target: every raw key, of its JSON type or null (absent = null).
RawEvent: type[msgspec.Struct] = msgspec.defstruct(
    "RawEvent", [(key, t | None, None) for key, t in RAW_TYPES.items()], forbid_unknown_fields=False
)
_DECODER = msgspec.json.Decoder(RawEvent)
_PATH_RE = re.compile(r"at `\$\.(\w+)")


def failing_key(exc: msgspec.ValidationError) -> str | None:
    """The raw key a msgspec validation error is about (None when it is about the whole record)."""
    match = _PATH_RE.search(str(exc))
    return match.group(1) if match else None


def convert_record(record: dict[str, Any]) -> dict[str, Any]:
    """A raw dict → its raw-key values (strict JSON types, absent = null); raises msgspec.ValidationError."""
    return msgspec.structs.asdict(msgspec.convert(record, RawEvent, strict=True))


# --------------------------------------------------------------------------------------- JSON lines
def iter_blocks(path: Path, block_bytes: int, progress: Any) -> Iterator[tuple[bytes, int, int]]:
    """Yield ``(block, first_line_number, n_lines)``: whole lines (no trailing newline), BOM removed.

    ``n_lines`` is the block's newline count + 1 (blank lines included), counted once here; ``progress``
    (a tqdm bar over the files' sizes on disk) advances by the file bytes consumed (compressed ones for gzip).
    """
    with open(path, "rb") as raw:
        fh: Any = gzip.GzipFile(fileobj=raw, mode="rb") if path.name.lower().endswith(".gz") else raw
        carry = b""
        line_no = 1
        first = True
        consumed = 0
        while True:
            chunk = fh.read(block_bytes)
            if not chunk:
                break
            progress.update(raw.tell() - consumed)
            consumed = raw.tell()
            if first:
                chunk = chunk.removeprefix(b"\xef\xbb\xbf")
                first = False
            cut = chunk.rfind(b"\n")
            if cut < 0:
                carry = carry + chunk
                continue
            # one copy: the carried tail joined with the chunk up to its last newline
            block = b"".join((carry, memoryview(chunk)[:cut])) if carry else chunk[:cut]
            carry = chunk[cut + 1 :]
            n_lines = block.count(b"\n") + 1
            yield block, line_no, n_lines
            line_no += n_lines
        if carry:
            yield carry, line_no, carry.count(b"\n") + 1


def decode_block(block: bytes, first_line: int, n_lines: int | None = None) -> pl.DataFrame:
    """Decode one block of lines into raw-key columns plus ``_line``, ``_text``, ``_pre``, ``_null``.

    Fastest path: a block of valid UTF-8 goes to ``pl.read_ndjson`` whole with a strict schema (string
    keys read as Categorical reject numbers and booleans; Int64 rejects fractions and booleans), with
    ``_text`` left null (the quarantine fills it from the block); it is kept only when it gives exactly
    one row per line (``read_ndjson`` skips blank lines; CR before LF is JSON whitespace). Any other
    block is split into lines and decoded by :func:`_decode_lines`.
    """
    if n_lines is None:
        n_lines = block.count(b"\n") + 1
    try:
        raw = pl.read_ndjson(io.BytesIO(block), schema=_STRICT_DTYPES)
    except pl.exceptions.PolarsError:  # a bad line, a wrong type or invalid UTF-8 somewhere
        raw = None
    if raw is not None and raw.height == n_lines:
        return raw.with_columns(
            # low-cardinality keys stay Categorical: validation and ``to_events`` cast them to Enums
            *(pl.col(k).cast(pl.String) for k in _STRING_KEYS if k not in _CATEGORY_KEYS),
            (pl.int_range(pl.len(), dtype=pl.Int64) + first_line).alias("_line"),
            pl.lit(None, dtype=pl.String).alias("_text"),
            pl.lit(None, dtype=pl.String).alias("_pre"),
            pl.lit(False).alias("_null"),
        ).select([*_BOOKKEEPING, *RAW_KEYS])
    lines = _split_lines(block, first_line)
    bad_utf8 = lines.filter(pl.col("_badutf8"))
    decoded = _decode_lines(lines.filter(~pl.col("_badutf8")).drop("_badutf8"))
    if bad_utf8.height:
        marked = _decode_slow(bad_utf8.drop("_badutf8")).with_columns(pl.lit("invalid_utf8").alias("_pre"))
        decoded = _align([decoded, marked])
    return decoded


def _split_lines(block: bytes, first_line: int) -> pl.DataFrame:
    """A block → non-blank lines with their 1-based numbers (``_line``, ``_text``); CR and blanks removed."""
    try:
        text = pl.Series("_text", [block], dtype=pl.Binary).cast(pl.String)
        lines = text.str.split("\n").explode().to_frame()
    except pl.exceptions.PolarsError:  # invalid UTF-8 somewhere: decode line by line
        decoded = [raw.decode("utf-8", errors="replace") for raw in block.split(b"\n")]
        lines = pl.Series("_text", decoded, dtype=pl.String).to_frame()
        bad = [i for i, raw in enumerate(block.split(b"\n")) if not _is_utf8(raw)]
        lines = lines.with_columns(
            pl.int_range(pl.len()).is_in(bad).alias("_badutf8"),
        )
    else:
        lines = lines.with_columns(pl.lit(False).alias("_badutf8"))
    lines = lines.with_columns(
        (pl.int_range(pl.len(), dtype=pl.Int64) + first_line).alias("_line"),
        pl.col("_text").str.strip_chars_end("\r"),
    )
    return lines.filter(pl.col("_text").str.strip_chars().str.len_bytes() > 0)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _decode_lines(lines: pl.DataFrame, min_split: int = _MIN_SPLIT) -> pl.DataFrame:
    """Fast path on the whole frame; on failure split in 8 and retry, down to ``min_split`` lines."""
    if lines.height == 0:
        return _decode_slow(lines)
    suspect = lines["_text"].str.contains(_SUSPECT)
    if suspect.any():
        slow = _decode_slow(lines.filter(suspect))
        rest = _decode_lines(lines.filter(~suspect), min_split) if (~suspect).any() else None
        parts = [p for p in (rest, slow) if p is not None]
        return _align(parts)
    fast = _decode_fast(lines)
    if fast is not None:
        return fast.with_columns(pl.lit(None, dtype=pl.String).alias("_pre"))
    if lines.height <= min_split:
        return _decode_slow(lines)
    step = -(-lines.height // 8)
    return _align([_decode_lines(lines.slice(i, step), min_split) for i in range(0, lines.height, step)])


def _decode_fast(lines: pl.DataFrame) -> pl.DataFrame | None:
    """Decode ``lines`` (``_text``) with Polars; None when any line fails (caller splits or goes slow)."""
    try:
        decoded = lines.select(pl.col("_text").str.json_decode(_RAW_STRUCT).alias("_s"))
    except pl.exceptions.PolarsError:
        return None
    return pl.concat(
        [lines, decoded.select(pl.col("_s").is_null().alias("_null"), pl.col("_s").struct.unnest())],
        how="horizontal",
    )


def _decode_slow(lines: pl.DataFrame) -> pl.DataFrame:
    """Decode ``lines`` one by one with msgspec; failures get ``_pre`` (invalid_json / wrong_type:key)."""
    rows: list[dict[str, Any]] = []
    for text, line in zip(lines["_text"].to_list(), lines["_line"].to_list(), strict=True):
        reason: str | None = None
        values: dict[str, Any] = {}
        try:
            values = msgspec.structs.asdict(_DECODER.decode(text))
        except msgspec.ValidationError as exc:
            key = failing_key(exc)
            reason = f"wrong_type:{key}" if key else "not_an_object"
        except msgspec.DecodeError:
            reason = "invalid_json"
        rows.append({"_line": line, "_text": text, "_pre": reason, **values})
    schema = {"_line": pl.Int64(), "_text": pl.String(), "_pre": pl.String(), **RAW_DTYPES}
    frame = pl.from_dicts(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
    return frame.with_columns(pl.lit(False).alias("_null"))


def _align(parts: list[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat([p.select([*_BOOKKEEPING, *RAW_KEYS]) for p in parts]).sort("_line")


# ------------------------------------------------------------------------------------------ Parquet
def parquet_blocks(path: Path, block_rows: int) -> Iterator[pl.DataFrame]:
    """Parquet input (raw Sparkify keys or the events table's columns) → decoded frames of ``block_rows``.

    Datetimes become epoch ms, Categorical/Enum strings; a missing key is null. ``_line`` is the
    1-based row number and ``_text`` the placeholder ``<parquet row>``. Raises ``LoadInputError`` when
    a column cannot be cast to its raw type.
    """
    pf = pq.ParquetFile(path)
    first = 1
    for batch in pf.iter_batches(batch_size=block_rows):
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        if "userId" not in frame.columns and "user_id" in frame.columns:
            frame = frame.rename({c: COLUMN_TO_RAW[c] for c in frame.columns if c in COLUMN_TO_RAW})
        exprs: list[pl.Expr] = []
        for key, dtype in RAW_DTYPES.items():
            if key not in frame.columns:
                exprs.append(pl.lit(None, dtype=dtype).alias(key))
                continue
            col = pl.col(key)
            if isinstance(frame.schema[key], pl.Datetime):
                col = col.dt.epoch("ms")
            elif isinstance(frame.schema[key], (pl.Categorical, pl.Enum)):
                col = col.cast(pl.String)
            exprs.append(col.cast(dtype).alias(key))
        try:
            raw = frame.select(exprs)
        except pl.exceptions.PolarsError as exc:
            raise LoadInputError(f"{path}: a column has the wrong type for the event schema: {exc}") from exc
        yield raw.with_columns(
            (pl.int_range(pl.len(), dtype=pl.Int64) + first).alias("_line"),
            pl.lit("<parquet row>").alias("_text"),
            pl.lit(None, dtype=pl.String).alias("_pre"),
            pl.lit(False).alias("_null"),
        )
        first += frame.height
