"""The raw schema is written once (``schema.RAW_SCHEMA``); everything else is derived and agrees with it."""

from __future__ import annotations

from pathlib import Path

import msgspec
import polars as pl

import churnflow.data.load as load_module
from churnflow.data import decode, discover, errors, quality, records, schema, table
from churnflow.data.decode import RawEvent
from churnflow.data.discover import has_visible_files


def test_raw_schema_derivations_agree() -> None:
    assert tuple(schema.RAW_SCHEMA) == schema.RAW_KEYS and len(schema.RAW_KEYS) == 18
    assert set(schema.RAW_TO_COLUMN.values()) | set(schema.SOURCE_COLUMNS) == set(schema.EVENT_COLUMNS)
    assert len(schema.EVENT_COLUMNS) == 20
    assert {c: k for k, c in schema.RAW_TO_COLUMN.items()} == schema.COLUMN_TO_RAW
    json_dtype = {str: pl.String(), int: pl.Int64(), float: pl.Float64()}
    assert {k: json_dtype[t] for k, t in schema.RAW_TYPES.items()} == schema.RAW_DTYPES
    assert set(schema.REQUIRED_RAW_KEYS) <= set(schema.RAW_KEYS)
    assert set(schema.RAW_VOCABULARIES) <= set(schema.RAW_KEYS)


def test_strict_decoder_struct_is_the_raw_schema() -> None:
    info = msgspec.inspect.type_info(RawEvent)
    assert tuple(f.name for f in info.fields) == schema.RAW_KEYS
    record = {k: {str: "x", int: 1, float: 1.5}[t] for k, t in schema.RAW_TYPES.items()}
    assert decode.convert_record(record) == record
    assert decode.convert_record({}) == dict.fromkeys(schema.RAW_KEYS)


def test_events_table_columns_follow_raw_types() -> None:
    """Each raw key's column is numeric for int/float keys and text-like for string keys."""
    for key, spec in schema.RAW_SCHEMA.items():
        dtype = schema.EVENT_DTYPES[spec.column]
        if spec.type is str:
            assert dtype in (pl.String(), pl.Categorical()) or isinstance(dtype, pl.Enum), key
        else:
            assert dtype.is_numeric() or isinstance(dtype, pl.Datetime), key
    assert table.empty_events().schema == pl.Schema(schema.EVENT_DTYPES)


def test_names_other_modules_import_from_load_are_the_canonical_objects() -> None:
    """``churnflow.data.load`` keeps every name it exported before the split (serving, stages, tests)."""
    canonical = {
        "EVENT_DTYPES": schema.EVENT_DTYPES,
        "RAW_DTYPES": schema.RAW_DTYPES,
        "SORT_KEYS": schema.SORT_KEYS,
        "DEDUP_KEYS": schema.DEDUP_KEYS,
        "AUTH_DTYPE": schema.AUTH_DTYPE,
        "LEVEL_DTYPE": schema.LEVEL_DTYPE,
        "METHOD_DTYPE": schema.METHOD_DTYPE,
        "JSON_SUFFIXES": discover.JSON_SUFFIXES,
        "PARQUET_SUFFIXES": discover.PARQUET_SUFFIXES,
        "EventValidationError": errors.EventValidationError,
        "LoadInputError": errors.LoadInputError,
        "TooManyBadLinesError": errors.TooManyBadLinesError,
        "discover_files": discover.discover_files,
        "empty_events": table.empty_events,
        "read_events": table.read_events,
        "normalize_records": records.normalize_records,
        "quality_summary": quality.quality_summary,
        "write_quarantine": quality.write_quarantine,
    }
    for name, obj in canonical.items():
        assert getattr(load_module, name) is obj, name
        assert name in load_module.__all__, name
    for name in ("load_events", "load_events_to_files", "LoadResult"):
        assert name in load_module.__all__


def test_hidden_files_are_not_data(tmp_path: Path) -> None:
    assert not has_visible_files(tmp_path / "absent")
    (tmp_path / "_truth").mkdir()
    (tmp_path / "_truth" / "truth.parquet").write_text("")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "x.json").write_text("")
    (tmp_path / ".gitignore").write_text("")
    assert not has_visible_files(tmp_path)
    (tmp_path / "my_export.json").write_text("")
    assert has_visible_files(tmp_path)
