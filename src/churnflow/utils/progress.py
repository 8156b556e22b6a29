"""Progress for long steps: a live bar on a terminal, one plain line per step in logs (DVC, CI, files).

``tqdm`` redraws its bar with carriage returns, which a log file keeps as thousands of fragments. When the
output is not a terminal, :func:`progress` returns a :class:`LineProgress` instead: the same small API
(``update``, ``set_postfix``, ``close``, context manager, iteration) printing one line per update (a
"step": a block loaded, a chunk simulated, a trial run), at most ``max_lines`` per bar.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any, TypeVar

T = TypeVar("T")


class LineProgress:
    """A tqdm-like counter that writes ``desc: n/total unit [elapsed] postfix`` lines (no redraws)."""

    def __init__(
        self,
        iterable: Iterable[Any] | None = None,
        *,
        total: float | None = None,
        desc: str = "",
        unit: str = "it",
        unit_scale: bool = False,
        disable: bool = False,
        file: IO[str] | None = None,
        max_lines: int = 200,
    ) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.desc, self.unit, self.unit_scale = total, desc, unit, unit_scale
        self.disable, self.file = disable, file or sys.stderr
        self.n: float = 0
        self.postfix = ""
        self.start = time.monotonic()
        # with a known total, print a line only when the share done crosses the next 1/max_lines
        self._every = (total / max_lines) if total else 0.0
        self._next = 0.0

    def _fmt(self, value: float) -> str:
        if not self.unit_scale:
            return f"{value:,.0f}"
        for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(value) >= scale:
                return f"{value / scale:.1f}{prefix}"
        return f"{value:.0f}"

    def _line(self) -> None:
        of = f"/{self._fmt(self.total)}" if self.total else ""
        post = f" {self.postfix}" if self.postfix else ""
        elapsed = time.monotonic() - self.start
        print(
            f"{self.desc}: {self._fmt(self.n)}{of} {self.unit} [{elapsed:.1f}s]{post}",
            file=self.file,
            flush=True,
        )

    def update(self, n: float = 1) -> None:
        """Advance by ``n``; print a line if a step boundary was crossed."""
        self.n += n
        if self.disable:
            return
        if self.n >= self._next or (self.total and self.n >= self.total):
            self._line()
            self._next = self.n + self._every

    def set_postfix(self, **values: Any) -> None:
        """Extra ``key=value`` text for the following lines."""
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        """Nothing to clear (each line is final)."""

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Any]:
        for item in self.iterable or ():
            yield item
            self.update(1)


def progress(iterable: Iterable[T] | None = None, **kwargs: Any) -> Any:
    """A tqdm bar on a terminal (stderr is a TTY), else a :class:`LineProgress`; same arguments as tqdm's
    ``total``, ``desc``, ``unit``, ``unit_scale``, ``disable``."""
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(iterable, **kwargs)
    return LineProgress(iterable, **kwargs)
