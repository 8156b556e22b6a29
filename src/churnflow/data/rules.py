"""Validation rules for decoded raw rows: which rows are bad, and the first reason each one is bad.

A rule is (reason code, raw key it judges, condition that makes a row bad); rules are checked in list
order and a row's reason is the first rule it breaks. The same rules serve the loader (a block at a
time) and :func:`churnflow.data.records.normalize_records` (one request). Bounds are epoch ms
``[min_ts, max_ts)`` (``DataConfig.valid_ts_ms``).
"""

from __future__ import annotations

from typing import NamedTuple

import polars as pl

from churnflow.data.schema import RAW_VOCABULARIES, REQUIRED_RAW_KEYS

#: Column set by the decoders: true where a line decoded to JSON ``null`` instead of an object.
NULL_COLUMN = "_null"
#: Column set by the decoders: a reason found while decoding (invalid_json, wrong_type:<key>, ...).
PRE_COLUMN = "_pre"


class Rule(NamedTuple):
    """One validation rule: its reason code, the raw key it judges (None: the record) and when it fails."""

    code: str
    key: str | None
    bad: pl.Expr


def rules(valid_ts_ms: tuple[int, int]) -> list[Rule]:
    """The validation rules in priority order for timestamps in ``[min_ts, max_ts)`` (epoch ms)."""
    min_ts, max_ts = valid_ts_ms
    ts, reg, length = pl.col("ts"), pl.col("registration"), pl.col("length")
    return [
        Rule("not_an_object", None, pl.col(NULL_COLUMN)),
        *(Rule(f"missing:{key}", key, pl.col(key).is_null()) for key in REQUIRED_RAW_KEYS),
        Rule("impossible_ts", "ts", (ts < min_ts) | (ts >= max_ts)),
        Rule(
            "impossible_registration",
            "registration",
            reg.is_not_null() & (reg.is_nan() | (reg < min_ts) | (reg >= max_ts)),
        ),
        *(
            Rule(f"invalid_value:{key}", key, pl.col(key).is_not_null() & ~pl.col(key).is_in(list(allowed)))
            for key, allowed in RAW_VOCABULARIES.items()
        ),
        Rule("invalid_value:sessionId", "sessionId", pl.col("sessionId") < 0),
        Rule("invalid_value:itemInSession", "itemInSession", pl.col("itemInSession") < 0),
        Rule("invalid_value:length", "length", length.is_nan() | (length < 0)),
    ]


def reason_expr(checks: list[Rule]) -> pl.Expr:
    """Per decoded row: the first broken rule's code (``_reason``), or null when the row is valid."""
    first, *rest = checks
    chain = pl.when(first.bad).then(pl.lit(first.code))
    for rule in rest:
        chain = chain.when(rule.bad).then(pl.lit(rule.code))
    return chain.otherwise(pl.lit(None, dtype=pl.String)).alias("_reason")


def bad_expr(checks: list[Rule]) -> pl.Expr:
    """Per decoded row: is it rejected by a rule or by its decoder (``_pre``)? (``_bad``; cheap)"""
    conds = [rule.bad.fill_null(False) for rule in checks]
    return (pl.col(PRE_COLUMN).is_not_null() | pl.any_horizontal(conds)).alias("_bad")
