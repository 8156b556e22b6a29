"""The feature registry: name, family, description and dtype of every feature, in output order."""

from __future__ import annotations

from functools import lru_cache

from churnflow.config.features import FeaturesConfig
from churnflow.features.formulas import FAMILIES, FeatureSpec, feature_definitions


def feature_registry(cfg: FeaturesConfig) -> list[FeatureSpec]:
    """All features for ``cfg`` (windows from config), in the column order of the feature table.

    Invariant: names are unique, ``family__name`` shaped, and every family is one of :data:`FAMILIES`.
    """
    return list(_registry(tuple(cfg.windows_days)))


def feature_names(cfg: FeaturesConfig) -> list[str]:
    """Feature column names in registry order."""
    return [s.name for s in _registry(tuple(cfg.windows_days))]


@lru_cache(maxsize=8)
def _registry(windows_days: tuple[int, ...]) -> tuple[FeatureSpec, ...]:
    specs = [spec for spec, _ in feature_definitions(FeaturesConfig(windows_days=list(windows_days)))]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise AssertionError(f"duplicate feature names: {dupes}")
    unknown = sorted({s.family for s in specs} - set(FAMILIES))
    if unknown:
        raise AssertionError(f"unknown feature families: {unknown}")
    return tuple(specs)
