"""Config schema: the `modelling` group(s)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MODEL_NAMES: tuple[str, ...] = ("lightgbm", "xgboost", "logreg")
SPACE_TYPES: tuple[str, ...] = ("float", "int", "categorical")


@dataclass
class SearchDim:
    """A tuned parameter: ``float``/``int`` in ``[low, high]`` (``log`` scale optional) or ``categorical``."""

    type: str = "float"  # float | int | categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None

    def check(self, where: str) -> None:
        """Raise ``ValueError`` prefixed with ``where`` (the key's name) when the dimension is malformed."""
        if self.type not in SPACE_TYPES:
            raise ValueError(f"{where}: needs type one of {SPACE_TYPES}, got {self.type!r}")
        if self.type == "categorical":
            if not self.choices:
                raise ValueError(f"{where}: categorical needs a non-empty 'choices' list")
            return
        if self.low is None or self.high is None or self.low > self.high:
            raise ValueError(f"{where}: needs low <= high, got low={self.low} high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"{where}: log scale needs low > 0")


@dataclass
class ModelConfig:
    """Model family, its fixed parameters and its Optuna search space (one :class:`SearchDim` each)."""

    name: str = "lightgbm"  # lightgbm | xgboost | logreg
    fixed: dict[str, Any] = field(default_factory=dict)
    search_space: dict[str, SearchDim] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_choice("model", "name", self.name, MODEL_NAMES)
        for key, dim in list(self.search_space.items()):
            if isinstance(dim, dict):  # built from plain dicts (tests, scripts)
                dim = self.search_space[key] = SearchDim(**dim)
            dim.check(f"model.search_space.{key} ({self.name})")
        clash = sorted(set(self.search_space) & {"seed", "verbose", "verbosity"})
        if clash:
            raise ValueError(f"model.search_space: {clash} are set by churnflow, not tuned")


def _check_choice(group: str, name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{group}.{name} must be one of {' | '.join(choices)}, got {value!r}")


def _check_range(group: str, name: str, value: float, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        raise ValueError(f"{group}.{name} must be in [{lo}, {hi}], got {value}")


@dataclass
class TuneConfig:
    """Optuna study settings (validation = the latest purged development cutoffs, see models/splits.py)."""

    n_trials: int = 20
    sampler_seed: int = 42
    pruner: str = "median"  # median | successive_halving | none
    timeout_s: int = 0  # 0 = no timeout
    n_validation_cutoffs: int = 1
    metric: str = "roc_auc"
    report_every: int = 25  # boosting rounds between intermediate reports (pruning)
    pruner_warmup_trials: int = 5  # trials completed before the pruner may prune
    max_rows: int = 0  # 0 = every tuning-train row; else a seeded sample of users up to this many rows

    def __post_init__(self) -> None:
        _check_choice("tune", "pruner", self.pruner, ("median", "successive_halving", "none"))
        _check_choice("tune", "metric", self.metric, ("roc_auc",))
        for name in ("n_trials", "n_validation_cutoffs", "report_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"tune.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_rows < 0:
            raise ValueError(f"tune.max_rows must be >= 0 (0 = no budget), got {self.max_rows}")


@dataclass
class TrainConfig:
    """Split sizes, final fit, calibration, threshold and the promotion gates."""

    n_test_cutoffs: int = 6  # the latest cutoffs: the final, never-tuned-on test set
    new_user_share: float = 0.05  # users (seeded hash) kept out of development: the "new users" test view
    class_weight: str = "balanced"  # balanced | none
    calibration: str = "platt"  # platt | isotonic | none (fitted on the validation rows)
    refit: bool = False  # false: ship the model the calibrator was fitted for; true: refit on all labels
    threshold_rule: str = "max_f1"  # max_f1 | target_precision | top_k (chosen on validation predictions)
    threshold_target_precision: float = 0.6
    threshold_top_k_share: float = 0.25
    promote_min_oracle_ratio: float = 0.85  # simulated data: known-customer AUC / oracle AUC floor
    promotion_alpha: float = 0.05  # challenger must beat the champion: P(bootstrap AUC gain <= 0) < alpha

    def __post_init__(self) -> None:
        _check_choice("train", "class_weight", self.class_weight, ("balanced", "none"))
        _check_choice("train", "calibration", self.calibration, ("platt", "isotonic", "none"))
        _check_choice("train", "threshold_rule", self.threshold_rule, ("max_f1", "target_precision", "top_k"))
        if self.n_test_cutoffs < 1:
            raise ValueError(f"train.n_test_cutoffs must be >= 1, got {self.n_test_cutoffs}")
        _check_range("train", "new_user_share", self.new_user_share, 0.0, 0.9)
        _check_range("train", "threshold_target_precision", self.threshold_target_precision, 0.0, 1.0)
        _check_range("train", "threshold_top_k_share", self.threshold_top_k_share, 1e-9, 1.0)
        _check_range("train", "promote_min_oracle_ratio", self.promote_min_oracle_ratio, 0.0, 1.0)
        _check_range("train", "promotion_alpha", self.promotion_alpha, 1e-9, 0.5)


@dataclass
class TrackingConfig:
    """MLflow tracking and registry."""

    uri: str = "sqlite:///mlflow.db"
    experiment: str = "churnflow"
    registered_model: str = "churn"
