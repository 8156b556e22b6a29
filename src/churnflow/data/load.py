"""Load raw Sparkify event logs into the typed, sorted, de-duplicated events table.

Inputs: files or folders of JSON lines (plain or ``.gz``) and Parquet. Every non-blank line ends up in
exactly one place: the events table, the anonymous (empty ``userId``) table, the quarantine (with file,
line and reason) or the duplicate count. Invariant, checked by the tests:
``loaded + quarantined + duplicates == lines_read``.

Fast path: a block of lines is decoded at once by Polars (``str.json_decode`` with an explicit schema);
only a block that fails to decode is split and, at the end, re-read line by line with msgspec, which is
strict about types, so bad lines are quarantined one by one. Lines that Polars would silently coerce
(a number where a string is expected, a boolean, a fraction in an integer field) are routed to the
strict path by a cheap regular expression. Memory stays bounded: decoded blocks are spilled to Parquet
and sorted in ``user_id`` ranges of at most ``cfg.sort_bucket_rows`` rows.
"""

from __future__ import annotations

import gzip
import io
import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from churnflow.config.data import DataConfig
from churnflow.data.schema import (
    AUTH_VALUES,
    EVENT_COLUMNS,
    GENDER_VALUES,
    LEVEL_VALUES,
    METHOD_VALUES,
    PAGES,
    RAW_KEYS,
    RAW_TO_COLUMN,
    REQUIRED_RAW_KEYS,
    STATUS_VALUES,
)

__all__ = [
    "EVENT_DTYPES",
    "EventValidationError",
    "LoadInputError",
    "LoadResult",
    "TooManyBadLinesError",
    "discover_files",
    "empty_events",
    "load_events",
    "load_events_to_files",
    "normalize_records",
    "quality_summary",
    "read_events",
    "write_quarantine",
]

JSON_SUFFIXES: tuple[str, ...] = (".json", ".jsonl", ".json.gz", ".jsonl.gz")
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet",)

_STRING_KEYS = (
    "artist",
    "auth",
    "firstName",
    "gender",
    "lastName",
    "level",
    "location",
    "method",
    "page",
    "song",
    "userAgent",
    "userId",
)
#: String keys with few values, kept Categorical after block decoding (they become Enum/Categorical).
_CATEGORY_KEYS = ("auth", "level", "method", "page")
_INT_KEYS = ("itemInSession", "sessionId", "status", "ts")
_FLOAT_KEYS = ("length", "registration")

#: Types of the raw keys as decoded (integers stay Int64 until the events table narrows them).
RAW_DTYPES: dict[str, pl.DataType] = {
    key: (pl.String() if key in _STRING_KEYS else pl.Int64() if key in _INT_KEYS else pl.Float64())
    for key in RAW_KEYS
}
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

_TZ = "UTC"
_TS = pl.Datetime("ms", _TZ)
AUTH_DTYPE = pl.Enum(list(AUTH_VALUES))
LEVEL_DTYPE = pl.Enum(list(LEVEL_VALUES))
METHOD_DTYPE = pl.Enum(list(METHOD_VALUES))

#: The events table: column → dtype, in ``EVENT_COLUMNS`` order.
EVENT_DTYPES: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "ts": _TS,
    "session_id": pl.Int64(),
    "item_in_session": pl.Int32(),
    "page": pl.Categorical(),
    "auth": AUTH_DTYPE,
    "method": METHOD_DTYPE,
    "status": pl.Int16(),
    "level": LEVEL_DTYPE,
    "registration": _TS,
    "gender": pl.String(),
    "location": pl.String(),
    "user_agent": pl.String(),
    "first_name": pl.String(),
    "last_name": pl.String(),
    "artist": pl.String(),
    "song": pl.String(),
    "length": pl.Float64(),
    "source_file": pl.String(),
    "source_line": pl.Int64(),
}
assert tuple(EVENT_DTYPES) == EVENT_COLUMNS

#: The stable total order of the events table (source position makes it total).
SORT_KEYS: tuple[str, ...] = ("user_id", "ts", "session_id", "item_in_session", "source_file", "source_line")
#: Columns that make two events "exact duplicates" (everything but the source position).
DEDUP_KEYS: tuple[str, ...] = tuple(c for c in EVENT_COLUMNS if c not in ("source_file", "source_line"))


class EventValidationError(ValueError):
    """A raw event failed validation: ``field`` (raw key or None), ``index`` (record number), ``reason``."""

    def __init__(self, field: str | None, index: int, reason: str) -> None:
        self.field = field
        self.index = index
        self.reason = reason
        where = f"field '{field}'" if field else "record"
        super().__init__(f"event {index}: {where}: {reason}")


class LoadInputError(ValueError):
    """An input cannot be read at all (missing path, unsupported file, wrong Parquet column type)."""


class TooManyBadLinesError(ValueError):
    """Quarantined share above ``DataConfig.max_bad_line_share``; the message names the first failures."""

    def __init__(self, message: str, quality: dict[str, Any]) -> None:
        super().__init__(message)
        self.quality = quality


@dataclass
class LoadResult:
    """Loaded events (users), anonymous events, quarantined lines and the data-quality report."""

    events: pl.DataFrame
    anonymous: pl.DataFrame
    quarantine: list[dict[str, Any]]
    quality: dict[str, Any]


@dataclass
class _FileStats:
    lines_read: int = 0
    quarantined: int = 0
    duplicates: int = 0


@dataclass
class _Pass1:
    """What the first pass leaves behind: spilled parts, counts and quarantined lines."""

    user_parts: list[Path] = field(default_factory=list)
    anon_parts: list[Path] = field(default_factory=list)
    user_counts: list[pl.DataFrame] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, _FileStats] = field(default_factory=dict)
    unknown_pages: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)


class _RawEvent(msgspec.Struct, forbid_unknown_fields=False):
    """Strict per-line decoding target (the slow path)."""

    artist: str | None = None
    auth: str | None = None
    firstName: str | None = None
    gender: str | None = None
    itemInSession: int | None = None
    lastName: str | None = None
    length: float | None = None
    level: str | None = None
    location: str | None = None
    method: str | None = None
    page: str | None = None
    registration: float | None = None
    sessionId: int | None = None
    song: str | None = None
    status: int | None = None
    ts: int | None = None
    userAgent: str | None = None
    userId: str | None = None


_DECODER = msgspec.json.Decoder(_RawEvent)
_PATH_RE = re.compile(r"at `\$\.(\w+)")


# ----------------------------------------------------------------------------------------------- files
def discover_files(inputs: list[Path]) -> list[tuple[Path, str]]:
    """Expand files and folders into ``(path, source_name)`` pairs, sorted, skipping ``_*``/``.*`` names.

    A folder contributes every JSON-lines or Parquet file below it (recursively) whose name and folders
    do not start with ``_`` or ``.``; ``source_name`` is the path relative to that folder. A file input
    is taken as given (``source_name`` = its name). Raises ``LoadInputError`` for a missing path or an
    unsupported file type.
    """
    found: list[tuple[Path, str]] = []
    for root in inputs:
        root = Path(root)
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                rel = path.relative_to(root)
                if any(part.startswith(("_", ".")) for part in rel.parts):
                    continue
                if path.is_file() and _kind(path) is not None:
                    found.append((path, rel.as_posix()))
        elif root.is_file():
            if _kind(root) is None:
                raise LoadInputError(
                    f"{root}: unsupported file type (expected {JSON_SUFFIXES + PARQUET_SUFFIXES})"
                )
            found.append((root, root.name))
        else:
            raise LoadInputError(f"{root}: no such file or folder")
    return found


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(JSON_SUFFIXES):
        return "json"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return None


def _iter_blocks(path: Path, block_bytes: int, progress: Any) -> Iterator[tuple[bytes, int, int]]:
    """Yield ``(block, first_line_number, n_lines)``: whole lines (no trailing newline), BOM removed.

    ``n_lines`` is the block's newline count + 1 (blank lines included), counted once here.
    """
    opener: Any = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        carry = b""
        line_no = 1
        first = True
        while True:
            chunk = fh.read(block_bytes)
            if not chunk:
                break
            progress.update(len(chunk))
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


# ---------------------------------------------------------------------------------------- validation
def _checks(min_ts: int, max_ts: int) -> list[tuple[pl.Expr, str]]:
    """The validation rules in priority order: (condition that makes a row bad, reason code)."""

    def invalid(key: str, allowed: tuple[Any, ...]) -> pl.Expr:
        return pl.col(key).is_not_null() & ~pl.col(key).is_in(list(allowed))

    reg, length = pl.col("registration"), pl.col("length")
    return [
        (pl.col("_null"), "not_an_object"),
        *((pl.col(key).is_null(), f"missing:{key}") for key in REQUIRED_RAW_KEYS),
        ((pl.col("ts") < min_ts) | (pl.col("ts") >= max_ts), "impossible_ts"),
        (reg.is_not_null() & (reg.is_nan() | (reg < min_ts) | (reg >= max_ts)), "impossible_registration"),
        (invalid("auth", AUTH_VALUES), "invalid_value:auth"),
        (invalid("level", LEVEL_VALUES), "invalid_value:level"),
        (invalid("method", METHOD_VALUES), "invalid_value:method"),
        (invalid("status", STATUS_VALUES), "invalid_value:status"),
        (invalid("gender", GENDER_VALUES), "invalid_value:gender"),
        (pl.col("sessionId") < 0, "invalid_value:sessionId"),
        (pl.col("itemInSession") < 0, "invalid_value:itemInSession"),
        (length.is_nan() | (length < 0), "invalid_value:length"),
    ]


def _reason_expr(min_ts: int, max_ts: int) -> pl.Expr:
    """Per decoded row: the first validation failure as a reason code, or null when the row is valid."""
    checks = _checks(min_ts, max_ts)
    first_cond, first_code = checks[0]
    chain = pl.when(first_cond).then(pl.lit(first_code))
    for cond, code in checks[1:]:
        chain = chain.when(cond).then(pl.lit(code))
    return chain.otherwise(pl.lit(None, dtype=pl.String)).alias("_reason")


def _bad_expr(min_ts: int, max_ts: int) -> pl.Expr:
    """Per decoded row: does any rule (or an earlier decoding failure in ``_pre``) reject it? (cheap)"""
    conds = [cond.fill_null(False) for cond, _ in _checks(min_ts, max_ts)]
    return (pl.col("_pre").is_not_null() | pl.any_horizontal(conds)).alias("_bad")


def _ts_bounds(cfg: DataConfig) -> tuple[int, int]:
    """``cfg.min_valid_ts``/``max_valid_ts`` (UTC dates) as epoch milliseconds."""

    def ms(text: str) -> int:
        try:
            day = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"data.min_valid_ts/max_valid_ts: not an ISO date: {text!r}") from exc
        return int(day.replace(tzinfo=day.tzinfo or UTC).timestamp() * 1000)

    return ms(cfg.min_valid_ts), ms(cfg.max_valid_ts)


def _to_events(raw: pl.DataFrame) -> pl.DataFrame:
    """Valid raw rows (raw keys + ``source_file``/``source_line``) → the typed events table columns."""
    exprs: list[pl.Expr] = []
    for col in EVENT_COLUMNS:
        if col == "ts":
            e = pl.col("ts").cast(pl.Datetime("ms")).dt.replace_time_zone(_TZ)
        elif col == "registration":
            e = (
                pl.col("registration")
                .round(0)
                .cast(pl.Int64)
                .cast(pl.Datetime("ms"))
                .dt.replace_time_zone(_TZ)
            )
        elif col in ("source_file", "source_line"):
            e = pl.col(col).cast(EVENT_DTYPES[col])
        else:
            raw_key = next(k for k, v in RAW_TO_COLUMN.items() if v == col)
            e = pl.col(raw_key).cast(EVENT_DTYPES[col])
        exprs.append(e.alias(col))
    return raw.select(exprs)


def empty_events() -> pl.DataFrame:
    """An events table with no rows (the right columns and dtypes)."""
    return pl.DataFrame(schema=EVENT_DTYPES)


# -------------------------------------------------------------------------------------------- decoding
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
    """Decode ``lines`` one by one with msgspec; failures get ``_reason`` (invalid_json / wrong_type:key)."""
    rows: list[dict[str, Any]] = []
    for text, line in zip(lines["_text"].to_list(), lines["_line"].to_list(), strict=True):
        reason: str | None = None
        values: dict[str, Any] = {}
        try:
            values = msgspec.structs.asdict(_DECODER.decode(text))
        except msgspec.ValidationError as exc:
            match = _PATH_RE.search(str(exc))
            reason = f"wrong_type:{match.group(1)}" if match else "not_an_object"
        except msgspec.DecodeError:
            reason = "invalid_json"
        rows.append({"_line": line, "_text": text, "_pre": reason, **values})
    schema = {"_line": pl.Int64(), "_text": pl.String(), "_pre": pl.String(), **RAW_DTYPES}
    frame = pl.from_dicts(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
    return frame.with_columns(pl.lit(False).alias("_null"))


def _decode_lines(lines: pl.DataFrame, min_split: int = 512) -> pl.DataFrame:
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


def _align(parts: list[pl.DataFrame]) -> pl.DataFrame:
    cols = ["_line", "_text", "_pre", "_null", *RAW_KEYS]
    return pl.concat([p.select(cols) for p in parts]).sort("_line")


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


def _decode_block(block: bytes, first_line: int, n_lines: int | None = None) -> pl.DataFrame:
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
            # low-cardinality keys stay Categorical: validation and ``_to_events`` cast them to Enums
            *(pl.col(k).cast(pl.String) for k in _STRING_KEYS if k not in _CATEGORY_KEYS),
            (pl.int_range(pl.len(), dtype=pl.Int64) + first_line).alias("_line"),
            pl.lit(None, dtype=pl.String).alias("_text"),
            pl.lit(None, dtype=pl.String).alias("_pre"),
            pl.lit(False).alias("_null"),
        ).select(["_line", "_text", "_pre", "_null", *RAW_KEYS])
    lines = _split_lines(block, first_line)
    bad_utf8 = lines.filter(pl.col("_badutf8"))
    decoded = _decode_lines(lines.filter(~pl.col("_badutf8")).drop("_badutf8"))
    if bad_utf8.height:
        marked = _decode_slow(bad_utf8.drop("_badutf8")).with_columns(pl.lit("invalid_utf8").alias("_pre"))
        decoded = _align([decoded, marked])
    return decoded


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# ------------------------------------------------------------------------------------------- pass 1
def _validate_block(
    decoded: pl.DataFrame,
    source: str,
    bounds: tuple[int, int],
    state: _Pass1,
    spill: Path,
    part_no: int,
    block: bytes | None = None,
    first_line: int = 1,
) -> None:
    """Split a decoded block into valid events (spilled, users and anonymous apart) and quarantined lines.

    Quarantined rows without their ``_text`` get it back from ``block`` (line ``_line - first_line``).
    """
    flagged = decoded.with_columns(_bad_expr(*bounds))
    any_bad = bool(flagged["_bad"].any())
    bad = (flagged.filter(pl.col("_bad")) if any_bad else flagged.clear()).with_columns(
        pl.coalesce(pl.col("_pre"), _reason_expr(*bounds)).alias("_reason")
    )
    checked = flagged
    if bad.height and block is not None and bad["_text"].null_count():
        raw_lines = block.split(b"\n")
        texts = [raw_lines[n - first_line].decode("utf-8", "replace").rstrip("\r") for n in bad["_line"]]
        bad = bad.with_columns(pl.Series("_text", texts, dtype=pl.String))
    stats = state.files[source]
    stats.lines_read += checked.height
    if bad.height:
        stats.quarantined += bad.height
        state.reasons.update(bad["_reason"].to_list())
        state.quarantine.extend(
            {"source_file": source, "source_line": line, "reason": reason, "raw": text}
            for line, reason, text in zip(bad["_line"], bad["_reason"], bad["_text"], strict=True)
        )
    good = (checked.filter(~pl.col("_bad")) if any_bad else checked).with_columns(
        pl.lit(source).alias("source_file"), pl.col("_line").alias("source_line")
    )
    if good.height == 0:
        return
    known = good["page"].is_in(list(PAGES))
    if not known.all():
        state.unknown_pages.update(good.filter(~known)["page"].to_list())
    events = _to_events(good)
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


def _parquet_blocks(path: Path, block_rows: int) -> Iterator[tuple[pl.DataFrame, int]]:
    """Parquet input (raw Sparkify keys or the events table's columns) → raw-key frames + first row no."""
    pf = pq.ParquetFile(path)
    first = 1
    for batch in pf.iter_batches(batch_size=block_rows):
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        to_raw = {v: k for k, v in RAW_TO_COLUMN.items()}
        if "userId" not in frame.columns and "user_id" in frame.columns:
            frame = frame.rename({c: to_raw[c] for c in frame.columns if c in to_raw})
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
        yield raw, first
        first += frame.height


def _prefetch_decoded(
    path: Path, block_bytes: int, progress: Any
) -> Iterator[tuple[bytes, int, pl.DataFrame]]:
    """Yield ``(block, first_line, decoded)`` in file order, reading and decoding the next block in a
    worker thread while the caller validates and spills the current one (Polars releases the GIL).

    At most one block is decoded ahead, so memory grows by one block only.
    """
    blocks = _iter_blocks(path, block_bytes, progress)

    def next_decoded() -> tuple[bytes, int, pl.DataFrame] | None:
        item = next(blocks, None)
        if item is None:
            return None
        block, first_line, n_lines = item
        return block, first_line, _decode_block(block, first_line, n_lines)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="churnflow-decode") as pool:
        pending = pool.submit(next_decoded)
        while (item := pending.result()) is not None:
            pending = pool.submit(next_decoded)
            yield item


def _pass1(inputs: list[Path], cfg: DataConfig, spill: Path, progress: bool) -> _Pass1:
    """Read every input once: decode, validate, quarantine, spill valid events in sorted parts."""
    files = discover_files(inputs)
    state = _Pass1()
    bounds = _ts_bounds(cfg)
    total = sum(p.stat().st_size for p, _ in files)
    part_no = 0
    with tqdm(total=total, unit="B", unit_scale=True, desc="load", disable=not progress) as bar:
        for path, source in files:
            if source in state.files:
                raise LoadInputError(f"{path}: two inputs share the source name {source!r}")
            state.files[source] = _FileStats()
            if _kind(path) == "parquet":
                for raw, first in _parquet_blocks(path, max(cfg.block_bytes // 512, 1024)):
                    decoded = raw.with_columns(
                        (pl.int_range(pl.len(), dtype=pl.Int64) + first).alias("_line"),
                        pl.lit("<parquet row>").alias("_text"),
                        pl.lit(None, dtype=pl.String).alias("_pre"),
                        pl.lit(False).alias("_null"),
                    )
                    _validate_block(decoded, source, bounds, state, spill, part_no)
                    part_no += 1
                bar.update(path.stat().st_size)
                continue
            for block, first_line, decoded in _prefetch_decoded(path, cfg.block_bytes, bar):
                _validate_block(decoded, source, bounds, state, spill, part_no, block, first_line)
                part_no += 1
    return state


# ------------------------------------------------------------------------------------------- pass 2
def _user_ranges(counts: list[pl.DataFrame], bucket_rows: int) -> list[tuple[str, str]]:
    """Contiguous, inclusive ``user_id`` ranges holding at most ~``bucket_rows`` events each."""
    if not counts:
        return []
    per_user = pl.concat(counts).group_by("user_id").agg(pl.col("len").sum()).sort("user_id")
    bucket = (per_user["len"].cum_sum() - per_user["len"]) // max(bucket_rows, 1)
    ranges = (
        per_user.with_columns(bucket.alias("b"))
        .group_by("b", maintain_order=True)
        .agg(pl.col("user_id").first().alias("lo"), pl.col("user_id").last().alias("hi"))
    )
    return list(zip(ranges["lo"].to_list(), ranges["hi"].to_list(), strict=True))


def _sorted_unique(frame: pl.DataFrame, files: dict[str, _FileStats]) -> pl.DataFrame:
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


def _arrow_schema() -> pa.Schema:
    return empty_events().to_arrow().schema


def _write_sorted(
    parts: list[Path], ranges: list[tuple[str, str]] | None, files: dict[str, _FileStats], target: Path
) -> int:
    """Write the sorted, de-duplicated events of ``parts`` to ``target`` range by range; rows written.

    Range k is compressed and written by a worker thread while range k+1 is read and sorted; ranges are
    written strictly in order and at most one range waits to be written, so memory stays bounded.
    """
    schema = _arrow_schema()
    written = 0
    with (
        pq.ParquetWriter(target, schema, compression="zstd", write_statistics=True) as writer,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="churnflow-write") as pool,
    ):
        if not parts:
            writer.write_table(schema.empty_table())
            return 0

        def write(frame: pl.DataFrame) -> None:
            writer.write_table(frame.to_arrow().cast(schema), row_group_size=1_048_576)

        pending: Future[None] | None = None
        scan = pl.scan_parquet(parts)
        for lo, hi in ranges if ranges is not None else [(None, None)]:
            query = scan if lo is None else scan.filter(pl.col("user_id").is_between(pl.lit(lo), pl.lit(hi)))
            frame = _sorted_unique(query.collect(), files)
            if lo is None:
                frame = frame.sort(["ts", "session_id", "item_in_session", "source_file", "source_line"])
            written += frame.height
            if pending is not None:
                pending.result()
            pending = pool.submit(write, frame)
            del frame
        if pending is not None:
            pending.result()
    return written


# ---------------------------------------------------------------------------------------- quality
def _quality(state: _Pass1, n_events: int, n_anon: int) -> dict[str, Any]:
    """The data-quality report (contract keys: lines_read, loaded, quarantined, duplicates, unknown_pages)."""
    files = {
        name: {
            "lines_read": s.lines_read,
            "quarantined": s.quarantined,
            "duplicates": s.duplicates,
            "loaded": s.lines_read - s.quarantined - s.duplicates,
        }
        for name, s in state.files.items()
    }
    lines_read = sum(s.lines_read for s in state.files.values())
    quarantined = sum(s.quarantined for s in state.files.values())
    return {
        "lines_read": lines_read,
        "loaded": n_events + n_anon,
        "loaded_users": n_events,
        "anonymous": n_anon,
        "quarantined": quarantined,
        "duplicates": sum(s.duplicates for s in state.files.values()),
        "bad_line_share": quarantined / lines_read if lines_read else 0.0,
        "unknown_pages": dict(sorted(state.unknown_pages.items())),
        "reasons": dict(sorted(state.reasons.items())),
        "files": files,
        "n_files": len(files),
    }


def quality_summary(quality: dict[str, Any]) -> str:
    """A short human summary of a quality report (printed by the stage and the CLI)."""
    lines = [
        f"lines read   {quality['lines_read']:>12,}  from {quality['n_files']} file(s)",
        f"loaded       {quality['loaded']:>12,}  ({quality['loaded_users']:,} user, "
        f"{quality['anonymous']:,} anonymous)",
        f"quarantined  {quality['quarantined']:>12,}  ({quality['bad_line_share']:.4%})",
        f"duplicates   {quality['duplicates']:>12,}",
    ]
    for reason, n in quality["reasons"].items():
        lines.append(f"  {reason}: {n:,}")
    if quality["unknown_pages"]:
        pages = ", ".join(f"{p!r}: {n:,}" for p, n in quality["unknown_pages"].items())
        lines.append(f"unknown pages (kept): {pages}")
    return "\n".join(lines)


def _check_share(state: _Pass1, cfg: DataConfig) -> None:
    """Raise ``TooManyBadLinesError`` naming the first failures when too many lines are quarantined."""
    quality = _quality(state, 0, 0)
    if quality["lines_read"] and quality["bad_line_share"] > cfg.max_bad_line_share:
        first = sorted(state.quarantine, key=lambda r: (r["source_file"], r["source_line"]))
        examples = "\n".join(
            f"  {r['source_file']}:{r['source_line']}: {r['reason']}" for r in first[: cfg.max_error_examples]
        )
        raise TooManyBadLinesError(
            f"{quality['quarantined']:,} of {quality['lines_read']:,} lines quarantined "
            f"({quality['bad_line_share']:.2%} > data.max_bad_line_share={cfg.max_bad_line_share:.2%}); "
            f"first failures (file:line: reason):\n{examples}",
            quality,
        )


def _sorted_quarantine(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["source_file"], r["source_line"]))


# ---------------------------------------------------------------------------------------- public API
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
    from churnflow.utils.io import atomic_path

    spill_root = cfg.spill_dir or None
    with tempfile.TemporaryDirectory(prefix="churnflow-load-", dir=spill_root) as tmp:
        spill = Path(tmp)
        state = _pass1(inputs, cfg, spill, progress)
        if check_bad_share:
            _check_share(state, cfg)
        # two ranges are in memory at once (one sorted, one being written): halve them to stay in budget
        ranges = _user_ranges(state.user_counts, max(cfg.sort_bucket_rows // 2, 1))
        with atomic_path(events_path) as ev_tmp, atomic_path(anonymous_path) as an_tmp:
            n_events = _write_sorted(state.user_parts, ranges, state.files, ev_tmp)
            n_anon = _write_sorted(state.anon_parts, None, state.files, an_tmp)
    return _sorted_quarantine(state.quarantine), _quality(state, n_events, n_anon)


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


def read_events(path: str | Path, columns: list[str] | tuple[str, ...] | None = None) -> pl.DataFrame:
    """Read an events table written by the loader, with the contract dtypes (``EVENT_DTYPES``).

    ``columns`` (default: all of ``EVENT_COLUMNS``, in that order) reads only those, which keeps memory
    small for steps that need a few columns of a big table.
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


def normalize_records(records: list[dict[str, Any]], cfg: DataConfig | None = None) -> pl.DataFrame:
    """Raw Sparkify dicts (e.g. an API request) → the typed events frame, sorted like the events table.

    Raises ``EventValidationError(field, index, reason)`` for the first record that is not an object,
    has a value of the wrong type, misses a required key or holds a value outside the allowed set.
    ``source_file`` is ``"<records>"`` and ``source_line`` the record's index. Nothing is de-duplicated.
    """
    cfg = cfg or DataConfig()
    rows: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise EventValidationError(None, index, f"not a JSON object but {type(record).__name__}")
        try:
            rows.append(msgspec.structs.asdict(msgspec.convert(record, _RawEvent, strict=True)))
        except msgspec.ValidationError as exc:
            match = _PATH_RE.search(str(exc))
            raise EventValidationError(match.group(1) if match else None, index, str(exc)) from exc
    raw = pl.from_dicts(rows, schema=RAW_DTYPES) if rows else pl.DataFrame(schema=RAW_DTYPES)
    checked = raw.with_columns(
        pl.lit(False).alias("_null"), pl.int_range(pl.len(), dtype=pl.Int64).alias("source_line")
    ).with_columns(_reason_expr(*_ts_bounds(cfg)))
    bad = checked.filter(pl.col("_reason").is_not_null())
    if bad.height:
        reason, index = bad["_reason"][0], int(bad["source_line"][0])
        key = (
            reason.split(":", 1)[1]
            if ":" in reason
            else ("ts" if reason == "impossible_ts" else "registration")
        )
        value = records[index].get(key)
        raise EventValidationError(key, index, f"{reason} (value {value!r})")
    events = _to_events(checked.with_columns(pl.lit("<records>").alias("source_file")))
    return events.sort(list(SORT_KEYS))


def write_quarantine(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Write quarantined lines as JSON lines (source_file, source_line, reason, raw), atomically."""
    from churnflow.utils.io import atomic_path

    encoder = msgspec.json.Encoder(order="sorted")
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        for row in rows:
            fh.write(encoder.encode(row) + b"\n")
