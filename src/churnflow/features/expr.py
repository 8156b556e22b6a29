"""The small integer expression language the event columns and measures are written in, once.

An :class:`IntExpr` (int64 values) or a :class:`Cond` (a condition) over named event columns compiles
two ways: :meth:`IntExpr.polars` to a Polars expression (the offline and Spark executions, over all
events or roll-up rows) and :meth:`IntExpr.numpy` to numpy arrays (the online execution, over one
user's events). Nulls propagate through arithmetic; a condition that is null does not hold. Integer
``//`` and ``%`` floor, as in Python, in both.

Invariant: both compilations do the same int64 operations, so they give the same integers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

#: One numpy column of one user's events: int64 values and a "not null" mask (None: no nulls).
Array = tuple[np.ndarray, np.ndarray | None]
PolarsCols = Callable[[str], pl.Expr]
NumpyCols = Callable[[str], Array]
_Op = Literal["+", "*", "//", "%"]


def both(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    """The "not null" mask of a value computed from two (None: no nulls)."""
    return b if a is None else a if b is None else a & b


class IntExpr:
    """An int64 expression over event columns (nulls propagate)."""

    def columns(self) -> frozenset[str]:
        """Event columns the expression reads."""
        raise NotImplementedError

    def polars(self, col: PolarsCols) -> pl.Expr:
        """The Polars expression; ``col(name)`` gives the int64 column ``name``."""
        raise NotImplementedError

    def numpy(self, col: NumpyCols) -> Array:
        """Values and "not null" mask; ``col(name)`` gives the column ``name`` of the same events."""
        raise NotImplementedError

    def __add__(self, other: IntExpr | int) -> IntExpr:
        return _Bin("+", self, _int(other))

    def __mul__(self, other: IntExpr | int) -> IntExpr:
        return _Bin("*", self, _int(other))

    def __floordiv__(self, other: int) -> IntExpr:
        return _Bin("//", self, _int(other))

    def __mod__(self, other: int) -> IntExpr:
        return _Bin("%", self, _int(other))

    def equals(self, value: int) -> Cond:
        """``self == value``."""
        return _Cmp("==", self, value)

    def below(self, value: int) -> Cond:
        """``self < value``."""
        return _Cmp("<", self, value)

    def at_least(self, value: int) -> Cond:
        """``self >= value``."""
        return _Cmp(">=", self, value)


@dataclass(frozen=True, eq=False)
class Col(IntExpr):
    """An event column (see :mod:`churnflow.features.columns`)."""

    name: str

    def columns(self) -> frozenset[str]:
        return frozenset({self.name})

    def polars(self, col: PolarsCols) -> pl.Expr:
        return col(self.name)

    def numpy(self, col: NumpyCols) -> Array:
        return col(self.name)


@dataclass(frozen=True, eq=False)
class _Lit(IntExpr):
    value: int

    def columns(self) -> frozenset[str]:
        return frozenset()

    def polars(self, col: PolarsCols) -> pl.Expr:
        return pl.lit(self.value, pl.Int64)

    def numpy(self, col: NumpyCols) -> Array:
        return np.int64(self.value), None  # type: ignore[return-value]


@dataclass(frozen=True, eq=False)
class _Bin(IntExpr):
    op: _Op
    a: IntExpr
    b: IntExpr

    def columns(self) -> frozenset[str]:
        return self.a.columns() | self.b.columns()

    def polars(self, col: PolarsCols) -> pl.Expr:
        return _apply(self.op, self.a.polars(col), self.b.polars(col))

    def numpy(self, col: NumpyCols) -> Array:
        (a, a_ok), (b, b_ok) = self.a.numpy(col), self.b.numpy(col)
        return _apply(self.op, a, b), both(a_ok, b_ok)


def _apply(op: _Op, a: object, b: object) -> object:
    """``a op b`` for Polars expressions and numpy arrays alike (both floor ``//`` and ``%``)."""
    if op == "+":
        return a + b  # type: ignore[operator]
    if op == "*":
        return a * b  # type: ignore[operator]
    if op == "//":
        return a // b  # type: ignore[operator]
    return a % b  # type: ignore[operator]


def _int(x: IntExpr | int) -> IntExpr:
    return x if isinstance(x, IntExpr) else _Lit(int(x))


class Cond:
    """A condition on event columns; null (a null operand) means "does not hold"."""

    def columns(self) -> frozenset[str]:
        raise NotImplementedError

    def polars(self, col: PolarsCols) -> pl.Expr:
        """Boolean Polars expression (null where an operand is null)."""
        raise NotImplementedError

    def numpy(self, col: NumpyCols) -> np.ndarray:
        """Boolean mask: True where the condition holds (False where it is null)."""
        raise NotImplementedError

    def __and__(self, other: Cond) -> Cond:
        return _And(self, other)


@dataclass(frozen=True, eq=False)
class _Cmp(Cond):
    op: Literal["==", "<", ">="]
    a: IntExpr
    value: int

    def columns(self) -> frozenset[str]:
        return self.a.columns()

    def polars(self, col: PolarsCols) -> pl.Expr:
        a = self.a.polars(col)
        return a == self.value if self.op == "==" else a < self.value if self.op == "<" else a >= self.value

    def numpy(self, col: NumpyCols) -> np.ndarray:
        a, ok = self.a.numpy(col)
        hit = a == self.value if self.op == "==" else a < self.value if self.op == "<" else a >= self.value
        return hit if ok is None else hit & ok


@dataclass(frozen=True, eq=False)
class _And(Cond):
    a: Cond
    b: Cond

    def columns(self) -> frozenset[str]:
        return self.a.columns() | self.b.columns()

    def polars(self, col: PolarsCols) -> pl.Expr:
        return self.a.polars(col) & self.b.polars(col)

    def numpy(self, col: NumpyCols) -> np.ndarray:
        return self.a.numpy(col) & self.b.numpy(col)
