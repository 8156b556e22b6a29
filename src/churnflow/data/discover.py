"""Input discovery: which files of the given files and folders hold raw events, and of what kind.

One rule says what is hidden (a name or folder starting with ``_`` or ``.``, e.g. the simulator's
``data/_truth/``); the loader and ``stages/bootstrap_data.py`` both use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from churnflow.data.errors import LoadInputError

JSON_SUFFIXES: tuple[str, ...] = (".json", ".jsonl", ".json.gz", ".jsonl.gz")
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet",)
HIDDEN_PREFIXES: tuple[str, ...] = ("_", ".")


def file_kind(path: Path) -> str | None:
    """``"json"`` (JSON lines, plain or gzip), ``"parquet"`` or None (not an events file), by name."""
    name = path.name.lower()
    if name.endswith(JSON_SUFFIXES):
        return "json"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return None


def visible_files(folder: Path) -> Iterator[tuple[Path, str]]:
    """Every file below ``folder`` (sorted, recursive) with no hidden name on its relative path.

    Yields ``(path, path relative to folder as POSIX text)``.
    """
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(HIDDEN_PREFIXES) for part in rel.parts):
            yield path, rel.as_posix()


def has_visible_files(folder: Path) -> bool:
    """True when ``folder`` exists and holds any visible file (hidden ones are sidecars, not data)."""
    return folder.is_dir() and next(visible_files(folder), None) is not None


def discover_files(inputs: list[Path]) -> list[tuple[Path, str]]:
    """Expand files and folders into ``(path, source_name)`` pairs, sorted, skipping ``_*``/``.*`` names.

    A folder contributes every JSON-lines or Parquet file below it (recursively) whose name and folders
    do not start with ``_`` or ``.``; ``source_name`` is the path relative to that folder. A file input
    is taken as given (``source_name`` = its name). Raises ``LoadInputError`` for a missing path or an
    unsupported file type.
    """
    found: list[tuple[Path, str]] = []
    for root in map(Path, inputs):
        if root.is_dir():
            found.extend((path, rel) for path, rel in visible_files(root) if file_kind(path) is not None)
        elif root.is_file():
            if file_kind(root) is None:
                raise LoadInputError(
                    f"{root}: unsupported file type (expected {JSON_SUFFIXES + PARQUET_SUFFIXES})"
                )
            found.append((root, root.name))
        else:
            raise LoadInputError(f"{root}: no such file or folder")
    return found
