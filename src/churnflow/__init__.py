"""churnflow: reproducible churn prediction from raw Sparkify-style event logs."""

__version__ = "0.1.0"
