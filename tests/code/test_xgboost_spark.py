"""Training past one machine: XGBoost's Spark estimator (``xgboost.spark``) on the project's feature table.

docs/scaling.md names ``SparkXGBClassifier`` as the path once the training table no longer fits one
machine. Here it runs in Spark local mode (2 workers, one per core) on the feature table of the simulator's
tiny world, trained on two thirds of the users and scored on the others (~1.5 min on 2 cores: slow).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from churnflow.config import Config
from churnflow.data.load import load_events
from churnflow.features import compute_features
from churnflow.labels import build_labels
from churnflow.simulate import simulate_to_dir
from churnflow.stats import weighted_roc_auc

pytest.importorskip("pyspark")
pytest.importorskip("xgboost.spark")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Spark needs a Java runtime (java on PATH or JAVA_HOME)", allow_module_level=True)


def _feature_table(root: Path) -> tuple[pl.DataFrame, list[str]]:
    """Features joined to labels on the tiny simulated world (as the pipeline's stages compute them)."""
    cfg = Config()
    simulate_to_dir("tiny", 7, root / "raw", progress=False)
    events = load_events([root / "raw"], cfg.data).events
    labels = build_labels(events, cfg.labels).labels
    features = compute_features(events, labels.select("user_id", "cutoff"), cfg.features)
    names = [c for c in features.columns if c not in ("user_id", "cutoff")]
    table = features.join(labels.select("user_id", "cutoff", "label"), on=["user_id", "cutoff"])
    # Spark ML wants float columns; nulls (no event in a window) become NaN, XGBoost's missing value
    table = table.with_columns([pl.col(n).cast(pl.Float64).fill_null(float("nan")) for n in names])
    return table.with_columns(pl.col("label").cast(pl.Int32)), names


@pytest.mark.slow
@pytest.mark.spark
def test_spark_xgboost_trains_in_local_mode_and_ranks_held_out_users(tmp_path: Path) -> None:
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from xgboost.spark import SparkXGBClassifier

    from churnflow.config import FeaturesConfig
    from churnflow.features.spark import make_spark_session

    table, names = _feature_table(tmp_path)
    held = (table["user_id"].hash(seed=3).to_numpy() % 3) == 0
    train, test = table.filter(pl.Series(~held)), table.filter(pl.Series(held))
    assert train["label"].n_unique() == 2 and test["label"].n_unique() == 2, "both classes on each side"

    spark = make_spark_session(FeaturesConfig(spark_master="local[2]", spark_partitions=2), "xgboost-test")
    try:
        to_spark = lambda frame: spark.createDataFrame(frame.select([*names, "label"]).to_pandas())  # noqa: E731
        estimator = SparkXGBClassifier(
            features_col=names,
            label_col="label",
            num_workers=2,
            n_estimators=60,
            max_depth=4,
            learning_rate=0.1,
            seed=7,
        )
        model = estimator.fit(to_spark(train))
        scored = model.transform(to_spark(test)).select("label", "probability").toPandas()
    finally:
        spark.stop()

    p = np.array([v[1] for v in scored["probability"]])
    y = scored["label"].to_numpy()
    assert len(p) == test.height
    assert np.all(np.isfinite(p)) and np.all((p >= 0) & (p <= 1)), "a probability of churn per row"
    assert np.allclose([v[0] + v[1] for v in scored["probability"]], 1.0)
    assert p.std() > 0, "the model ranks users, it does not return one constant"
    auc = float(weighted_roc_auc(y, p)[0])
    assert auc > 0.65, f"held-out AUC {auc:.3f}: the Spark-trained model should rank churners first"
