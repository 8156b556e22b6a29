"""Evaluation: metrics with bootstrap intervals, threshold rules, business curve, plots, leakage audit,
feature importance (gain + SHAP) and the HTML report. Pure functions on arrays/frames; the evaluate stage
does the writing."""
