"""Progress output: a live bar on a terminal, one plain line per step in a log (no carriage returns)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from churnflow.utils.progress import LineProgress, progress


def test_line_progress_writes_one_line_per_step_and_caps_them() -> None:
    out = io.StringIO()
    with LineProgress(total=10, desc="tune", unit="trial", file=out) as bar:
        for _ in range(10):
            bar.update(1)
            bar.set_postfix(best="0.8")
    lines = out.getvalue().splitlines()
    assert len(lines) == 10 and "\r" not in out.getvalue()
    assert lines[-1].startswith("tune: 10/10 trial") and lines[-1].endswith("best=0.8")
    many = io.StringIO()
    bar = LineProgress(total=1_000_000, desc="load", unit="B", unit_scale=True, file=many, max_lines=50)
    for _ in range(10_000):
        bar.update(100)
    assert 45 <= len(many.getvalue().splitlines()) <= 51 and "1.0M/1.0M B" in many.getvalue()
    assert list(LineProgress(range(3), desc="x", file=io.StringIO())) == [0, 1, 2]


def test_not_a_terminal_gets_lines(tmp_path: Path) -> None:
    assert isinstance(progress(total=3, desc="x"), LineProgress)  # pytest captures stderr: not a TTY
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "churnflow"),
            "simulate",
            "--preset",
            "tiny",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "simulate tiny:" in proc.stderr and "\r" not in proc.stderr
