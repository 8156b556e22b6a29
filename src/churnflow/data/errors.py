"""The loader's errors: unreadable input, a bad API record, too many bad lines in an export."""

from __future__ import annotations

from typing import Any


class LoadInputError(ValueError):
    """An input cannot be read at all (missing path, unsupported file, wrong Parquet column type)."""


class EventValidationError(ValueError):
    """A raw event failed validation: ``field`` (raw key or None), ``index`` (record number), ``reason``."""

    def __init__(self, field: str | None, index: int, reason: str) -> None:
        self.field = field
        self.index = index
        self.reason = reason
        where = f"field '{field}'" if field else "record"
        super().__init__(f"event {index}: {where}: {reason}")


class TooManyBadLinesError(ValueError):
    """Quarantined share above ``DataConfig.max_bad_line_share``; the message names the first failures."""

    def __init__(self, message: str, quality: dict[str, Any]) -> None:
        super().__init__(message)
        self.quality = quality
