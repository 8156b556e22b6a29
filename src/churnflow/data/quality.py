"""The data-quality report, its human summary, the bad-line-share gate and the quarantine file.

Report keys (contract, ``reports/quality.json``): ``lines_read``, ``loaded``, ``loaded_users``,
``anonymous``, ``quarantined``, ``duplicates``, ``bad_line_share``, ``unknown_pages``, ``reasons``,
``files`` (per file: ``lines_read``, ``quarantined``, ``duplicates``, ``loaded``), ``n_files``.
Invariant: ``loaded + quarantined + duplicates == lines_read``, in total and per file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from churnflow.config.data import DataConfig
from churnflow.data.errors import TooManyBadLinesError
from churnflow.data.first_pass import FirstPass
from churnflow.utils.io import atomic_path


def quality_report(state: FirstPass, n_events: int, n_anon: int) -> dict[str, Any]:
    """The report for a finished load: ``n_events`` user and ``n_anon`` anonymous events written."""
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


def sorted_quarantine(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Quarantined lines in file, then line order."""
    return sorted(rows, key=lambda r: (r["source_file"], r["source_line"]))


def enforce_bad_share(state: FirstPass, cfg: DataConfig) -> None:
    """Raise ``TooManyBadLinesError`` naming the first failures when too many lines are quarantined."""
    quality = quality_report(state, 0, 0)
    if quality["lines_read"] and quality["bad_line_share"] > cfg.max_bad_line_share:
        first = sorted_quarantine(state.quarantine)[: cfg.max_error_examples]
        examples = "\n".join(f"  {r['source_file']}:{r['source_line']}: {r['reason']}" for r in first)
        raise TooManyBadLinesError(
            f"{quality['quarantined']:,} of {quality['lines_read']:,} lines quarantined "
            f"({quality['bad_line_share']:.2%} > data.max_bad_line_share={cfg.max_bad_line_share:.2%}); "
            f"first failures (file:line: reason):\n{examples}",
            quality,
        )


def write_quarantine(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Write quarantined lines as JSON lines (source_file, source_line, reason, raw), atomically."""
    encoder = msgspec.json.Encoder(order="sorted")
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        for row in rows:
            fh.write(encoder.encode(row) + b"\n")
