"""DVC plot tables (CSV-ready Polars frames) and PNG figures for the evaluation report.

Tables: roc (fpr, tpr), pr (recall, precision), calibration (mean_predicted, fraction_positive, count),
lift (share_targeted, capture_rate, lift), confusion (actual, predicted: one row per test example),
business (share_targeted, net_value, roi). Figures are rendered with matplotlib's Agg backend to PNG bytes
(deterministic: no timestamps in the metadata).
"""

from __future__ import annotations

import io

import numpy as np
import polars as pl
from sklearn.metrics import precision_recall_curve, roc_curve

from churnflow.stats import calibration_table, ranked


def roc_table(y: np.ndarray, p: np.ndarray) -> pl.DataFrame:
    """ROC curve points (fpr, tpr, threshold); the +inf start threshold is written as 1.0."""
    fpr, tpr, thr = roc_curve(y, p, drop_intermediate=True)
    return pl.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": np.minimum(thr, 1.0)})


def pr_table(y: np.ndarray, p: np.ndarray) -> pl.DataFrame:
    """Precision-recall curve points (recall, precision), recall ascending."""
    precision, recall, _ = precision_recall_curve(y, p)
    return pl.DataFrame({"recall": recall[::-1], "precision": precision[::-1]})


def calibration_frame(y: np.ndarray, p: np.ndarray, n_bins: int) -> pl.DataFrame:
    """Reliability curve over equal-width bins (non-empty bins only)."""
    mean_p, frac, count = calibration_table(y, p, n_bins)
    return pl.DataFrame(
        {"mean_predicted": mean_p, "fraction_positive": frac, "count": count.astype(np.int64)}
    )


def lift_table(y: np.ndarray, p: np.ndarray, n_points: int = 100) -> pl.DataFrame:
    """Cumulative capture rate and lift when targeting the top share of scores."""
    ys = ranked(y, p)
    n, total = len(ys), max(int(ys.sum()), 1)
    cum = np.r_[0, np.cumsum(ys)]
    shares = np.arange(1, n_points + 1) / n_points
    k = np.maximum(1, np.ceil(shares * n).astype(np.int64))
    capture = cum[k] / total
    lift = (cum[k] / k) / max(ys.mean(), 1e-12)
    return pl.DataFrame({"share_targeted": shares, "capture_rate": capture, "lift": lift})


def confusion_table(y: np.ndarray, p: np.ndarray, threshold: float) -> pl.DataFrame:
    """One row per test example: actual and predicted class (DVC's confusion template)."""
    return pl.DataFrame(
        {"actual": np.asarray(y).astype(np.int64), "predicted": (p >= threshold).astype(np.int64)}
    )


def _png(fig: object) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return buf.getvalue()


def _axes(title: str, xlabel: str, ylabel: str) -> tuple[object, object]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.0))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig, ax


def figure_roc(roc: pl.DataFrame, auc: float, oracle_auc: float | None = None) -> bytes:
    """ROC curve PNG with the diagonal."""
    fig, ax = _axes("ROC curve (out-of-time test)", "false positive rate", "true positive rate")
    ax.plot(roc["fpr"], roc["tpr"], label=f"model AUC {auc:.3f}")  # type: ignore[attr-defined]
    ax.plot([0, 1], [0, 1], "--", color="grey", label="random")  # type: ignore[attr-defined]
    if oracle_auc is not None:
        ax.plot([], [], " ", label=f"oracle AUC {oracle_auc:.3f}")  # type: ignore[attr-defined]
    ax.legend(loc="lower right")  # type: ignore[attr-defined]
    return _png(fig)


def figure_pr(pr: pl.DataFrame, pr_auc: float, base_rate: float) -> bytes:
    """Precision-recall PNG with the base rate."""
    fig, ax = _axes("Precision-recall (out-of-time test)", "recall", "precision")
    ax.plot(pr["recall"], pr["precision"], label=f"PR-AUC {pr_auc:.3f}")  # type: ignore[attr-defined]
    ax.axhline(base_rate, ls="--", color="grey", label=f"base rate {base_rate:.3f}")  # type: ignore[attr-defined]
    ax.legend(loc="upper right")  # type: ignore[attr-defined]
    return _png(fig)


def figure_calibration(cal: pl.DataFrame, ece: float, oracle: pl.DataFrame | None = None) -> bytes:
    """Reliability diagram PNG: observed churn rate per predicted-probability bin (marker size ~ rows)."""
    fig, ax = _axes("Calibration (reliability, test)", "mean predicted probability", "observed churn rate")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")  # type: ignore[attr-defined]
    size = 12 + 120 * np.sqrt(cal["count"].to_numpy() / max(int(cal["count"].max() or 1), 1))
    ax.plot(cal["mean_predicted"], cal["fraction_positive"], "-", color="tab:blue", alpha=0.6)  # type: ignore[attr-defined]
    ax.scatter(
        cal["mean_predicted"],
        cal["fraction_positive"],
        s=size,
        color="tab:blue",
        label=f"model (ECE {ece:.3f})",
    )  # type: ignore[attr-defined]
    if oracle is not None and oracle.height:
        ax.plot(
            oracle["mean_predicted"], oracle["fraction_positive"], "s:", color="tab:purple", label="oracle"
        )  # type: ignore[attr-defined]
    ax.legend(loc="upper left")  # type: ignore[attr-defined]
    return _png(fig)


def figure_views(rows: list[tuple[str, str, float, list[float]]]) -> bytes:
    """ROC-AUC with 95% user-bootstrap intervals per test view and scorer (model, latent-state model,
    oracle): ``rows`` of (view, scorer, auc, [lo, hi])."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"model": "tab:blue", "latent-state model": "tab:green", "oracle": "tab:purple"}
    views = list(dict.fromkeys(v for v, _, _, _ in rows))
    scorers = list(dict.fromkeys(s for _, s, _, _ in rows))
    fig, ax = plt.subplots(figsize=(6.5, 0.9 + 0.55 * len(views) * len(scorers)))
    y = 0.0
    ticks, labels = [], []
    for view in views:
        for scorer in scorers:
            hit = [(a, ci) for v, s, a, ci in rows if v == view and s == scorer]
            if not hit:
                continue
            auc, (lo, hi) = hit[0]
            ax.errorbar(
                [auc], [y], xerr=[[auc - lo], [hi - auc]], fmt="o", color=colors.get(scorer, "k"), capsize=4
            )
            ax.text(hi + 0.005, y, f"{auc:.3f}", va="center", fontsize=8)
            ticks.append(y)
            labels.append(f"{view.replace('_', ' ')} · {scorer}")
            y -= 1.0
        y -= 0.5
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("ROC-AUC (95% interval, users resampled)")
    ax.set_title("Test ROC-AUC by view: model, latent-state model, oracle ceiling")
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def figure_lift(lift: pl.DataFrame) -> bytes:
    """Cumulative capture (gain) chart PNG."""
    fig, ax = _axes(
        "Capture rate by share targeted", "share of users targeted (by risk)", "share of churners"
    )
    ax.plot(lift["share_targeted"], lift["capture_rate"], label="model")  # type: ignore[attr-defined]
    ax.plot([0, 1], [0, 1], "--", color="grey", label="random")  # type: ignore[attr-defined]
    ax.legend(loc="lower right")  # type: ignore[attr-defined]
    return _png(fig)


def figure_business(curve: pl.DataFrame, top_k_share: float) -> bytes:
    """Net value (and ROI on a twin axis) over the targeted share."""
    fig, ax = _axes("Expected net value of targeting the top k%", "share targeted", "net value ($)")
    ax.plot(curve["share_targeted"], curve["net_value"], color="tab:green", label="net value")  # type: ignore[attr-defined]
    ax.axvline(top_k_share, ls=":", color="grey", label=f"top {top_k_share:.0%}")  # type: ignore[attr-defined]
    twin = ax.twinx()  # type: ignore[attr-defined]
    twin.plot(curve["share_targeted"], curve["roi"], color="tab:orange", label="ROI (right axis)")
    twin.set_ylabel("ROI")
    lines = ax.get_lines() + twin.get_lines()  # type: ignore[attr-defined]
    ax.legend(lines, [line.get_label() for line in lines], loc="upper right")  # type: ignore[attr-defined]
    return _png(fig)


def figure_confusion(y: np.ndarray, p: np.ndarray, threshold: float) -> bytes:
    """2×2 confusion matrix PNG with counts."""
    pred = (p >= threshold).astype(int)
    y = np.asarray(y).astype(int)
    m = np.array([[np.sum((y == a) & (pred == b)) for b in (0, 1)] for a in (0, 1)])
    fig, ax = _axes(f"Confusion matrix (threshold {threshold:.3f})", "predicted", "actual")
    ax.imshow(m, cmap="Blues")  # type: ignore[attr-defined]
    for a in (0, 1):
        for b in (0, 1):
            ax.text(b, a, str(m[a, b]), ha="center", va="center", fontsize=14)  # type: ignore[attr-defined]
    ax.set_xticks([0, 1], ["stay", "churn"])  # type: ignore[attr-defined]
    ax.set_yticks([0, 1], ["stay", "churn"])  # type: ignore[attr-defined]
    ax.grid(False)  # type: ignore[attr-defined]
    return _png(fig)


def figure_bars(names: list[str], values: list[float], title: str, xlabel: str) -> bytes:
    """Horizontal bar chart PNG (largest on top)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 0.28 * max(len(names), 4) + 1.0))
    ax.barh(names[::-1], values[::-1], color="tab:blue")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)
