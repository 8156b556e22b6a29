"""Per-request normalisation (serving): raw Sparkify dicts → the typed events frame, or a named error.

Same decoding types and validation rules as the loader, but strict instead of forgiving: the first bad
record raises instead of being quarantined, and nothing is de-duplicated.
"""

from __future__ import annotations

from typing import Any

import msgspec
import polars as pl

from churnflow.config.data import DataConfig
from churnflow.data.decode import convert_record, failing_key
from churnflow.data.errors import EventValidationError
from churnflow.data.rules import NULL_COLUMN, reason_expr, rules
from churnflow.data.schema import RAW_DTYPES, SORT_KEYS
from churnflow.data.table import to_events

#: ``source_file`` of events that arrived as records (``source_line`` is the record's index).
RECORDS_SOURCE = "<records>"


def normalize_records(records: list[dict[str, Any]], cfg: DataConfig | None = None) -> pl.DataFrame:
    """Raw Sparkify dicts (e.g. an API request) → the typed events frame, sorted like the events table.

    ``cfg`` gives the valid timestamp range (``data.min_valid_ts``/``max_valid_ts``; default: the
    ``DataConfig`` defaults — pass the run's config). Raises ``EventValidationError(field, index,
    reason)`` for the first record that is not an object, has a value of the wrong type, misses a
    required key or holds a value outside the allowed set. ``source_file`` is ``"<records>"`` and
    ``source_line`` the record's index. Nothing is de-duplicated.
    """
    checks = rules((cfg or DataConfig()).valid_ts_ms)
    rows: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise EventValidationError(None, index, f"not a JSON object but {type(record).__name__}")
        try:
            rows.append(convert_record(record))
        except msgspec.ValidationError as exc:
            raise EventValidationError(failing_key(exc), index, str(exc)) from exc
    raw = pl.from_dicts(rows, schema=RAW_DTYPES) if rows else pl.DataFrame(schema=RAW_DTYPES)
    checked = raw.with_columns(
        pl.lit(False).alias(NULL_COLUMN), pl.int_range(pl.len(), dtype=pl.Int64).alias("source_line")
    ).with_columns(reason_expr(checks))
    bad = checked.filter(pl.col("_reason").is_not_null())
    if bad.height:
        reason, index = bad["_reason"][0], int(bad["source_line"][0])
        key = next(rule.key for rule in checks if rule.code == reason)
        value = records[index].get(key) if key else None
        raise EventValidationError(key, index, f"{reason} (value {value!r})")
    events = to_events(checked.with_columns(pl.lit(RECORDS_SOURCE).alias("source_file")))
    return events.sort(list(SORT_KEYS))
