"""Config schema: the `serve` group(s)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ServeConfig:
    """Online service: risk bands, explanations, auth, rate limits and request limits.

    The package stage copies every field into the Bento model's metadata, so the service never reads
    ``params.yaml``. Deployment-specific values have environment overrides (see docs/serving.md):
    ``$CHURNFLOW_RATE_LIMIT_STORAGE`` for ``rate_limit_storage`` and ``$CHURNFLOW_WORKERS`` for ``workers``.
    """

    risk_low: float = 0.3  # probability below → low
    risk_high: float = 0.6  # probability at or above → high
    top_reasons: int = 5  # signed feature contributions returned per prediction
    bento_model_name: str = "churn"
    # auth: "key:requests_per_hour" entries, comma-separated, in this env var (or a file named by
    # $CHURNFLOW_API_KEYS_FILE; "sha256:<hex>:requests_per_hour" entries keep only hashes on disk)
    api_keys_env: str = "CHURNFLOW_API_KEYS"
    min_key_length: int = 16  # shorter keys refuse to start the service
    default_requests_per_hour: int = 36_000  # for a key listed without its own rate
    failed_auth_per_minute: int = 10  # per client address; more answer 429 before the key is checked
    # "memory://" holds counters in one worker process (only correct with workers: 1);
    # "redis://host:port" shares them across workers and replicas
    rate_limit_storage: str = "memory://"
    workers: int = 1  # BentoML worker processes; > 1 needs a shared rate_limit_storage
    threads_per_worker: int = (
        1  # OpenMP (LightGBM) and Polars threads in each worker (1: no oversubscription)
    )
    # request limits (bodies over the byte limits get 413 before they are parsed)
    max_body_bytes: int = 8_388_608  # /predict, /predict/user
    max_batch_body_bytes: int = 67_108_864  # /predict/batch
    max_events_per_request: int = 20_000  # one user's events in /predict
    max_batch_users: int = 1_000
    max_batch_events: int = 250_000
    max_string_length: int = 1_024  # any string field of an event
    max_song_length_s: float = 86_400.0  # `length` (seconds) must lie in [0, this]
