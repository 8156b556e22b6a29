"""Synthetic feature + label tables shaped like the pipeline's (for model/evaluation tests).

``make_tables(n_users, n_cutoffs, seed)`` → (features, labels): weekly cutoffs; churn depends on
``engagement__thumbs_down`` (+), ``engagement__errors`` (+) and ``engagement__songs`` (−); ``noise__a`` is
pure noise and ``profile__name_len`` is unrelated to churn. Each label is known ``label_window_days``
after its cutoff (``known_at``), as the label stage writes it; the defaults leave room for the purged
split (3 test cutoffs, 2 validation cutoffs, earlier tuning-train cutoffs).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

FEATURES: tuple[str, ...] = (
    "engagement__thumbs_down",
    "engagement__errors",
    "engagement__songs",
    "noise__a",
    "profile__name_len",
)
START = dt.datetime(2024, 1, 15)


def make_tables(
    n_users: int = 300,
    n_cutoffs: int = 10,
    seed: int = 0,
    positive_shift: float = -1.5,
    label_window_days: int = 14,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Features (user_id, cutoff, FEATURES…) and labels (user_id, cutoff, label, churn_kind, churn_ts,
    horizon_days, known_at) for ``n_users`` users at ``n_cutoffs`` weekly cutoffs (every user at every
    cutoff)."""
    rng = np.random.default_rng(seed)
    rows_f: list[dict[str, object]] = []
    rows_l: list[dict[str, object]] = []
    base = rng.normal(size=(n_users, 3))
    for k in range(n_cutoffs):
        cutoff = START + dt.timedelta(days=7 * k)
        x = base + 0.5 * rng.normal(size=(n_users, 3))
        thumbs = np.exp(x[:, 0])
        errors = rng.poisson(np.exp(0.5 * x[:, 1]))
        songs = np.exp(3 + x[:, 2])
        logit = positive_shift + 1.2 * x[:, 0] + 0.6 * x[:, 1] - 1.0 * x[:, 2]
        label = (rng.random(n_users) < 1 / (1 + np.exp(-logit))).astype(np.int8)
        for u in range(n_users):
            rows_f.append(
                {
                    "user_id": f"u{u:04d}",
                    "cutoff": cutoff,
                    "engagement__thumbs_down": float(thumbs[u]) if rng.random() > 0.05 else None,
                    "engagement__errors": float(errors[u]),
                    "engagement__songs": float(songs[u]),
                    "noise__a": float(rng.normal()),
                    "profile__name_len": float(3 + (u * 7) % 9),
                }
            )
            rows_l.append(
                {
                    "user_id": f"u{u:04d}",
                    "cutoff": cutoff,
                    "label": int(label[u]),
                    "churn_kind": "cancel" if label[u] else None,
                    "churn_ts": cutoff + dt.timedelta(days=3) if label[u] else None,
                    "horizon_days": 14,
                    "known_at": cutoff + dt.timedelta(days=label_window_days),
                }
            )
    features = pl.DataFrame(rows_f, schema_overrides={"cutoff": pl.Datetime("ms")})
    labels = pl.DataFrame(
        rows_l,
        schema={
            "user_id": pl.Utf8,
            "cutoff": pl.Datetime("ms"),
            "label": pl.Int8,
            "churn_kind": pl.Utf8,
            "churn_ts": pl.Datetime("ms"),
            "horizon_days": pl.Int32,
            "known_at": pl.Datetime("ms"),
        },
    )
    return features, labels
