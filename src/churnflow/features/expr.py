"""The small integer expression language the event columns and measures are written in, once.

An :class:`IntExpr` (int64 values) or a :class:`Cond` (a condition) over named event columns compiles
two ways: :meth:`IntExpr.polars` to a Polars expression (the offline and Spark executions, over all
events or roll-up rows) and :meth:`IntExpr.numpy` to numpy arrays (the online execution, over one
user's events). Nulls propagate through arithmetic; a condition that is null does not hold. Integer
``//`` and ``%`` floor, as in Python, in both.

The level-0 columns read the typed input columns through three leaves: :class:`Col` (int64),
:class:`Real` (float64 scaled and rounded to int64) and :class:`Text` (strings: codes by a Python
function of each distinct string, equality, null tests and the Polars hash). Online, a string column is
dictionary-encoded once (:class:`Strings`), so a function of a string runs once per distinct value.

Invariant: both compilations do the same int64 operations, so they give the same integers (the hash
is Polars' own in both).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

#: One numpy column of one user's events: int64 values and a "not null" mask (None: no nulls).
Array = tuple[np.ndarray, np.ndarray | None]
PolarsCols = Callable[[str], pl.Expr]
#: Online columns by name: an :data:`Array` (int64 and float64 inputs) or :class:`Strings`.
NumpyCols = Callable[[str], Any]
_Op = Literal["+", "*", "//", "%", "^"]


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

    def __xor__(self, other: IntExpr) -> IntExpr:
        return _Bin("^", self, other)

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

    def where(self, cond: Cond, otherwise: int | None = None) -> IntExpr:
        """``self`` where ``cond`` holds, else ``otherwise`` (None: null)."""
        return _When(cond, self, otherwise)


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
    if op == "^":
        return a ^ b  # type: ignore[operator]
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


@dataclass(frozen=True, eq=False)
class _When(IntExpr):
    cond: Cond
    then: IntExpr
    otherwise: int | None

    def columns(self) -> frozenset[str]:
        return self.cond.columns() | self.then.columns()

    def polars(self, col: PolarsCols) -> pl.Expr:
        value = pl.when(self.cond.polars(col)).then(self.then.polars(col))
        return value if self.otherwise is None else value.otherwise(pl.lit(self.otherwise, pl.Int64))

    def numpy(self, col: NumpyCols) -> Array:
        value, ok = self.then.numpy(col)
        hold = self.cond.numpy(col)
        if self.otherwise is None:
            return value, hold if ok is None else hold & ok
        return np.where(hold, value, self.otherwise), None if ok is None else ok | ~hold


# ---------------------------------------------------------------------------------------------------
# Leaves over the typed input columns: floats and strings
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Real(IntExpr):
    """float64 input column ``name`` times ``scale``, rounded half to even, as int64.

    A non-null value that is not finite or does not fit int64 is an error (a strict cast), in both.
    """

    name: str
    scale: float

    def columns(self) -> frozenset[str]:
        return frozenset({self.name})

    def polars(self, col: PolarsCols) -> pl.Expr:
        return (col(self.name) * self.scale).round(0).cast(pl.Int64)

    def numpy(self, col: NumpyCols) -> Array:
        x, ok = col(self.name)  # float64, any value where null
        r = np.round(x * self.scale)
        fits = np.isfinite(r) & (r >= -(2.0**63)) & (r < 2.0**63)
        if not (fits if ok is None else fits | ~ok).all():
            raise ValueError(f"events.{self.name}: a value that is not finite or does not fit int64")
        return np.where(fits, r, 0.0).astype(np.int64), ok


class Strings:
    """One user's string column for the numpy compilation; each view is computed once, on first use.

    ``raw``: the column as a Polars String, Categorical or Enum series.
    """

    def __init__(self, raw: pl.Series) -> None:
        self.raw = raw
        self._hashes: dict[int, np.ndarray] = {}
        self._lookups: dict[Callable[[str], int], Array] = {}

    @cached_property
    def arrow(self) -> pa.Array:
        """The column as an Arrow array (a categorical as a dictionary array)."""
        return self.raw.to_arrow()

    @cached_property
    def ok(self) -> np.ndarray | None:
        """The "not null" mask (None: no nulls)."""
        return None if self.raw.null_count() == 0 else self.arrow.is_valid().to_numpy(False)

    @cached_property
    def encoded(self) -> tuple[np.ndarray, list[str]]:
        """(per-event index into the distinct strings, 0 where null; the distinct strings)."""
        arr = self.arrow
        if not isinstance(arr, pa.DictionaryArray) or len(arr.dictionary) > len(arr):
            arr = pc.dictionary_encode(
                arr.dictionary_decode() if isinstance(arr, pa.DictionaryArray) else arr
            )
        idx = arr.indices
        return (idx.fill_null(0) if idx.null_count else idx).to_numpy(), arr.dictionary.to_pylist()

    @cached_property
    def constant(self) -> tuple[bool, str | None]:
        """(whether every non-null string is one value, that value): one user's gender, user agent...

        Checked on plain strings only (a categorical is dictionary-encoded already).
        """
        if self.raw.null_count() == self.raw.len():
            return True, None
        if self.raw.dtype != pl.String:
            return False, None
        low, high = self.raw.min(), self.raw.max()
        return low == high, None if low is None else str(low)

    def lookup(self, fn: Callable[[str], int]) -> Array:
        """``fn`` of each event's string (run once per distinct string), null where the string is null."""
        if fn not in self._lookups:
            same, value = self.constant
            if same:
                code = 0 if value is None else fn(value)
                self._lookups[fn] = np.full(self.raw.len(), code, dtype=np.int64), self.ok
            else:
                idx, distinct = self.encoded
                table = np.array([fn(v) for v in distinct] or [0], dtype=np.int64)
                self._lookups[fn] = table[idx], self.ok
        return self._lookups[fn]

    def hash(self, seed: int) -> np.ndarray:
        """Polars' hash of each event's string (of the String values, as offline) as int64."""
        if seed not in self._hashes:  # one Polars call, which gives the "not null" mask too
            c = pl.col(self.raw.name)
            out = self.raw.to_frame().select_seq(
                c.cast(pl.String).hash(seed).alias("h"), c.is_not_null().alias("ok")
            )
            self._hashes[seed] = out.get_column("h").to_numpy().view(np.int64)
            if "ok" not in self.__dict__:
                self.__dict__["ok"] = None if self.raw.null_count() == 0 else out.get_column("ok").to_numpy()
        return self._hashes[seed]


@dataclass(frozen=True, eq=False)
class Text:
    """A string input column: Polars String/Categorical/Enum offline, :class:`Strings` online."""

    name: str

    def code(self, fn: Callable[[str], int], null: int | None = None) -> IntExpr:
        """int64 ``fn(string)``, run once per distinct string; ``null`` where the string is null."""
        return _Code(self, fn, null)

    def equals(self, value: str) -> Cond:
        """The string is ``value``."""
        return _Is(self, value)

    def is_not_null(self) -> Cond:
        """The string is not null."""
        return _NotNull(self)

    def hash(self, seed: int) -> IntExpr:
        """Polars' 64-bit hash of the string (as int64; defined for null strings too)."""
        return _Hash(self, seed)


@dataclass(frozen=True, eq=False)
class _Code(IntExpr):
    text: Text
    fn: Callable[[str], int]
    null: int | None

    def columns(self) -> frozenset[str]:
        return frozenset({self.text.name})

    def polars(self, col: PolarsCols) -> pl.Expr:
        fn, null = self.fn, self.null

        def codes(s: pl.Series) -> pl.Series:
            distinct = s.drop_nulls().unique()
            out = s.replace_strict(
                distinct,
                [fn(v) for v in distinct.cast(pl.String).to_list()],
                default=None,
                return_dtype=pl.Int64,
            )
            return out if null is None else out.fill_null(null)

        return col(self.text.name).map_batches(codes, return_dtype=pl.Int64, is_elementwise=True)

    def numpy(self, col: NumpyCols) -> Array:
        value, ok = col(self.text.name).lookup(self.fn)
        if self.null is None or ok is None:
            return value, ok
        return np.where(ok, value, self.null), None


@dataclass(frozen=True, eq=False)
class _Hash(IntExpr):
    text: Text
    seed: int

    def columns(self) -> frozenset[str]:
        return frozenset({self.text.name})

    def polars(self, col: PolarsCols) -> pl.Expr:
        return col(self.text.name).cast(pl.String).hash(self.seed).reinterpret(signed=True)

    def numpy(self, col: NumpyCols) -> Array:
        return col(self.text.name).hash(self.seed), None


@dataclass(frozen=True, eq=False)
class _Is(Cond):
    text: Text
    value: str

    def columns(self) -> frozenset[str]:
        return frozenset({self.text.name})

    def polars(self, col: PolarsCols) -> pl.Expr:
        return col(self.text.name) == self.value

    def numpy(self, col: NumpyCols) -> np.ndarray:
        hit, ok = col(self.text.name).lookup(self.value.__eq__)
        hold = hit.astype(bool)
        return hold if ok is None else hold & ok


@dataclass(frozen=True, eq=False)
class _NotNull(Cond):
    text: Text

    def columns(self) -> frozenset[str]:
        return frozenset({self.text.name})

    def polars(self, col: PolarsCols) -> pl.Expr:
        return col(self.text.name).is_not_null()

    def numpy(self, col: NumpyCols) -> np.ndarray:
        strings: Strings = col(self.text.name)
        return np.ones(strings.raw.len(), dtype=bool) if strings.ok is None else strings.ok
