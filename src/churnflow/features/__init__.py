"""Point-in-time feature engine: one definition (Polars), executed offline, online and on Spark.

Public API: :func:`compute_features`, :func:`compute_features_online`, :func:`feature_registry`,
:func:`feature_names`, :func:`render_catalog`, :class:`FeatureSpec`; Spark in :mod:`churnflow.features.spark`.
"""

from churnflow.features.catalog import render_catalog
from churnflow.features.columns import FeatureInputError
from churnflow.features.formulas import FeatureSpec
from churnflow.features.offline import compute_features
from churnflow.features.online import compute_features_online
from churnflow.features.registry import feature_names, feature_registry

__all__ = [
    "FeatureInputError",
    "FeatureSpec",
    "compute_features",
    "compute_features_online",
    "feature_names",
    "feature_registry",
    "render_catalog",
]
