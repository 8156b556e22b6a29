"""Join features with labels, fit the final model, choose its threshold, score the test set.

Flow of :func:`train_final` (all deterministic for the same data + config + seed):

1. split rows with :func:`split_by_time` (test = latest cutoffs; validation = out-of-time, users grouped);
2. choose the threshold by ``cfg.train.threshold_rule`` (never on test) on the predictions of
   ``cfg.train.threshold_source``: ``validation`` (a model fitted on the tuning-train rows scores the
   out-of-time validation rows) or ``oof`` (user-grouped out-of-fold over the development rows);
   ``auto`` picks validation when it is out-of-time, else out-of-fold;
3. refit on all development rows (everything before the test cutoffs, purged), predict test, compute metrics.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from churnflow.config import Config
from churnflow.evaluation.metrics import classification_metrics
from churnflow.evaluation.thresholds import ThresholdChoice, choose_threshold
from churnflow.models.artifact import ChurnModel
from churnflow.models.factory import fit_model, merge_params
from churnflow.models.splits import TimeSplit, split_by_time

KEYS: tuple[str, str] = ("user_id", "cutoff")


@dataclass
class Dataset:
    """Features joined to labels: ``frame`` (keys, label columns, features) sorted by cutoff, user_id."""

    frame: pl.DataFrame
    feature_names: list[str]

    def matrix(self, mask: np.ndarray | None = None) -> np.ndarray:
        """Float64 feature matrix (rows where ``mask``)."""
        frame = self.frame if mask is None else self.frame.filter(pl.Series(mask))
        return frame.select([pl.col(n).cast(pl.Float64) for n in self.feature_names]).to_numpy()

    def target(self, mask: np.ndarray | None = None) -> np.ndarray:
        """0/1 labels as int64 (rows where ``mask``)."""
        frame = self.frame if mask is None else self.frame.filter(pl.Series(mask))
        return frame.get_column("label").cast(pl.Int64).to_numpy()

    @property
    def labels(self) -> pl.DataFrame:
        """The label columns (for :func:`split_by_time`)."""
        return self.frame.select([c for c in self.frame.columns if c not in self.feature_names])


@dataclass
class TrainResult:
    """The fitted model (threshold set), its test metrics and what went into it."""

    model: ChurnModel
    params: dict[str, Any]
    threshold: ThresholdChoice
    split: TimeSplit
    test_metrics: dict[str, Any]
    validation_metrics: dict[str, float]
    counts: dict[str, int] = field(default_factory=dict)


def feature_columns(features: pl.DataFrame) -> list[str]:
    """Feature column names: everything but the join keys, in table order."""
    missing = [k for k in KEYS if k not in features.columns]
    if missing:
        raise KeyError(f"features table lacks key column(s) {missing}")
    names = [c for c in features.columns if c not in KEYS]
    if not names:
        raise ValueError("features table holds no feature columns")
    return names


def join_features_labels(features: pl.DataFrame, labels: pl.DataFrame) -> Dataset:
    """Inner-join on (user_id, cutoff); every label row must have its feature row.

    Raises ``ValueError`` naming the count and an example key of label rows without features, of duplicate
    keys, or of labels that are not 0/1.
    """
    names = feature_columns(features)
    for col in ("user_id", "cutoff", "label", "horizon_days"):
        if col not in labels.columns:
            raise KeyError(f"labels table lacks column {col!r}")
    for name, table in (("features", features), ("labels", labels)):
        dup = table.select(KEYS).is_duplicated()
        if dup.any():
            example = table.filter(dup).row(0, named=True)
            raise ValueError(
                f"{name} table has {int(dup.sum())} rows with duplicate (user_id, cutoff), "
                f"e.g. {example['user_id']!r} @ {example['cutoff']}"
            )
    bad = labels.filter(~pl.col("label").cast(pl.Int64).is_in([0, 1]) | pl.col("label").is_null())
    if bad.height:
        raise ValueError(
            f"labels table has {bad.height} label(s) that are not 0/1, e.g. user {bad['user_id'][0]!r}"
        )
    feats = features.with_columns(pl.col("cutoff").cast(labels.schema["cutoff"]))
    frame = labels.join(feats, on=list(KEYS), how="left", coalesce=True)
    joined = labels.join(feats.select(KEYS), on=list(KEYS), how="anti")
    if joined.height:
        row = joined.row(0, named=True)
        raise ValueError(
            f"{joined.height} label row(s) have no feature row, e.g. user {row['user_id']!r} "
            f"@ {row['cutoff']}; were features computed for these labels?"
        )
    frame = frame.with_columns(pl.col("label").cast(pl.Int8)).sort(["cutoff", "user_id"])
    return Dataset(frame=frame, feature_names=names)


def make_split(data: Dataset, cfg: Config, n_validation_cutoffs: int | None = None) -> TimeSplit:
    """:func:`split_by_time` with the settings from ``cfg`` (train + tune groups)."""
    return split_by_time(
        data.labels,
        cfg.train.n_test_cutoffs,
        n_validation_cutoffs if n_validation_cutoffs is not None else cfg.tune.n_validation_cutoffs,
        validation_user_share=cfg.tune.validation_user_share,
        seed=cfg.seed,
        purge=cfg.train.purge_label_overlap,
    )


def split_warnings(split: TimeSplit) -> list[str]:
    """Plain-words caveats about a split (printed by the stages, stored in model_meta.json)."""
    out = []
    if not split.validation_out_of_time:
        out.append(
            f"only {len(split.development_cutoffs)} cutoff(s) before the test cutoff(s): validation is "
            "user-grouped at the same cutoff(s), NOT out-of-time"
        )
    if split.label_overlap_rows:
        out.append(
            f"{split.label_overlap_rows} training row(s) have label windows reaching past the first test "
            "cutoff (purge off: train.purge_label_overlap=false)"
        )
    return out


def threshold_source(setting: str, split: TimeSplit) -> str:
    """``validation`` or ``oof``; ``auto``: out-of-time validation if the split has it, else out-of-fold."""
    if setting not in ("auto", "validation", "oof"):
        raise ValueError(f"train.threshold_source must be auto | validation | oof, got {setting!r}")
    if setting == "auto":
        return "validation" if split.validation_out_of_time else "oof"
    return setting


def out_of_fold(
    data: Dataset, rows: np.ndarray, cfg: Config, params: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, out-of-fold probabilities) over ``rows``, folds grouped by user (seeded hash of user_id).

    Each user's rows are scored by a model that never saw that user. Folds holding a single class in their
    training part are skipped (their rows are left out of the result).
    """
    from churnflow.models.splits import _user_bucket

    k = cfg.train.threshold_folds
    if k < 2:
        raise ValueError(f"train.threshold_folds must be >= 2, got {k}")
    frame = data.frame.filter(pl.Series(rows))
    fold = np.minimum((_user_bucket(frame.get_column("user_id"), cfg.seed + 1) * k).astype(np.int64), k - 1)
    x = frame.select([pl.col(n).cast(pl.Float64) for n in data.feature_names]).to_numpy()
    y = frame.get_column("label").cast(pl.Int64).to_numpy()
    probs = np.full(len(y), np.nan)
    for f in range(k):
        held = fold == f
        if not held.any() or len(np.unique(y[~held])) < 2:
            continue
        model = fit_model(
            cfg.model.name,
            params,
            x[~held],
            y[~held],
            feature_names=data.feature_names,
            seed=cfg.seed,
            class_weight=cfg.train.class_weight,
        )
        probs[held] = model.predict_proba_matrix(x[held])
    keep = ~np.isnan(probs)
    if not keep.any():
        raise ValueError("no out-of-fold predictions: every fold's training part holds a single class")
    return y[keep], probs[keep]


def train_final(data: Dataset, cfg: Config, tuned_params: dict[str, Any], split: TimeSplit) -> TrainResult:
    """Fit with fixed + tuned params; choose the threshold on validation or out-of-fold predictions
    (``train.threshold_source``); refit on all development rows; score the test rows.

    ``validation_metrics["roc_auc"]`` is measured on the predictions the threshold was chosen on.
    """
    from sklearn.metrics import roc_auc_score

    params = merge_params(cfg.model.fixed, tuned_params)
    common = {"feature_names": data.feature_names, "seed": cfg.seed, "class_weight": cfg.train.class_weight}
    source = threshold_source(cfg.train.threshold_source, split)
    if source == "validation":
        probe = fit_model(
            cfg.model.name, params, data.matrix(split.train), data.target(split.train), **common
        )
        y_val = data.target(split.validation)
        p_val = probe.predict_proba_matrix(data.matrix(split.validation))
        where = "validation"
    else:
        y_val, p_val = out_of_fold(data, split.development, cfg, params)
        where = f"{cfg.train.threshold_folds}-fold user-grouped out-of-fold"
    choice = choose_threshold(
        y_val,
        p_val,
        cfg.train.threshold_rule,
        target_precision=cfg.train.threshold_target_precision,
        top_k_share=cfg.train.threshold_top_k_share,
    )
    choice = ThresholdChoice(choice.threshold, choice.rule, f"{where} predictions: {choice.how}")
    val_metrics = {
        "roc_auc": float(roc_auc_score(y_val, p_val)) if len(set(y_val.tolist())) == 2 else float("nan")
    }
    model = fit_model(
        cfg.model.name, params, data.matrix(split.development), data.target(split.development), **common
    )
    model.threshold = choice.threshold
    y_test = data.target(split.test)
    p_test = model.predict_proba_matrix(data.matrix(split.test))
    test_metrics = classification_metrics(
        y_test,
        p_test,
        choice.threshold,
        calibration_bins=cfg.evaluate.calibration_bins,
        bootstrap_samples=cfg.evaluate.bootstrap_samples,
        seed=cfg.seed,
    )
    counts = {
        "n_train": int(split.development.sum()),
        "n_test": int(split.test.sum()),
        "n_tune_train": int(split.train.sum()),
        "n_validation": int(split.validation.sum()),
        "n_train_positive": int(data.target(split.development).sum()),
        "n_test_positive": int(y_test.sum()),
    }
    return TrainResult(model, params, choice, split, test_metrics, val_metrics, counts)


def describe_model(result: TrainResult, cfg: Config, data_hashes: dict[str, str]) -> dict[str, Any]:
    """The deterministic ``model_meta.json`` payload (no time, host or run ids)."""
    split = result.split

    def iso(values: list[Any]) -> list[str]:
        return [v.isoformat() if hasattr(v, "isoformat") else str(v) for v in values]

    return {
        "registered_model": cfg.tracking.registered_model,
        "params": result.params,
        "seed": cfg.seed,
        "class_weight": cfg.train.class_weight,
        "threshold_choice": result.threshold.to_dict(),
        "train_cutoffs": iso(split.development_cutoffs),
        "tune_train_cutoffs": iso(split.train_cutoffs),
        "validation_cutoffs": iso(split.validation_cutoffs),
        "test_cutoffs": iso(split.test_cutoffs),
        "purge_label_overlap": cfg.train.purge_label_overlap,
        "label_overlap_rows": split.label_overlap_rows,
        "validation_out_of_time": split.validation_out_of_time,
        "counts": result.counts,
        "validation_metrics": result.validation_metrics,
        "test_metrics": result.test_metrics,
        "data_hashes": dict(sorted(data_hashes.items())),
        "split_warnings": split_warnings(split),
    }


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (data hashes for model_meta.json and MLflow tags)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def frame_sha256(frame: pl.DataFrame) -> str:
    """Content hash of a frame (row hashes, order-sensitive) — stable for the same Polars version."""
    return hashlib.sha256(frame.hash_rows(seed=0).to_numpy().tobytes()).hexdigest()
