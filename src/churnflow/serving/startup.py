"""Start-up checks of the service, importable without starting anything (the service module runs them).

:func:`prepare` loads and checks the packaged model (``$CHURNFLOW_BENTO_MODEL``), the API keys, the
rate-limit storage and the worker count; :func:`prepare_or_exit` turns any refusal into ONE line on stderr
and exit status :data:`EXIT_REFUSED`. Invariant: the service never starts without keys unless
``CHURNFLOW_INSECURE_DEV=1`` (then a banner says so), never with per-process rate limits in several
workers, never with a model that fails :func:`churnflow.serving.loading.load_served_model`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from churnflow.config.serve import ServeConfig
from churnflow.serving.auth import (
    INSECURE_DEV_ENV,
    KeyConfigError,
    KeyRing,
    insecure_dev_enabled,
    parse_entries,
    read_key_entries,
)
from churnflow.serving.loading import MODEL_TAG_ENV, ModelLoadError, ServedModel, load_served_model
from churnflow.serving.ratelimit import StorageUnavailable, check_storage, is_shared, storage_uri

logger = logging.getLogger("churnflow.serving")
#: Environment variable that overrides ``serve.workers``.
WORKERS_ENV = "CHURNFLOW_WORKERS"
#: Exit status of a refused start-up.
EXIT_REFUSED = 2


class StartupError(RuntimeError):
    """The service must not start (the message says why and what to set)."""


@dataclass(frozen=True)
class Startup:
    """Everything checked before BentoML starts a worker."""

    served: ServedModel
    keyring: KeyRing | None
    key_source: str
    storage: str
    workers: int


def building_a_bento(argv: list[str] | None = None) -> bool:
    """True inside ``bentoml build`` (it imports the service to read its config; nothing is served)."""
    args = sys.argv if argv is None else argv
    return len(args) > 1 and Path(args[0]).name.startswith("bentoml") and args[1] == "build"


def prepare(environ: Mapping[str, str] | None = None, *, build_only: bool = False) -> Startup:
    """Load and check the model, keys, storage and worker count; StartupError/ModelLoadError if unusable.

    ``environ`` defaults to the process environment. ``build_only``: only the model is checked (what
    ``bentoml build`` bundles); keys, storage and workers are the serving host's business.
    """
    env = dict(os.environ if environ is None else environ)
    served = load_served_model(env.get(MODEL_TAG_ENV) or f"{ServeConfig().bento_model_name}:latest")
    if build_only:
        return Startup(served, None, "none (bentoml build)", "memory://", 1)
    serve = served.settings.serve
    entries, source = read_key_entries(serve.api_keys_env, env)
    keys = parse_entries(entries, serve.default_requests_per_hour, serve.min_key_length)
    if not keys and not insecure_dev_enabled(env):
        raise StartupError(
            f"no API keys: set ${serve.api_keys_env} to 'key:requests_per_hour' entries (or "
            f"$CHURNFLOW_API_KEYS_FILE to a file of them); for local development only, "
            f"{INSECURE_DEV_ENV}=1 serves without keys"
        )
    uri = storage_uri(serve.rate_limit_storage, env)
    check_storage(uri)
    workers = int(env.get(WORKERS_ENV) or serve.workers)
    if workers < 1:
        raise StartupError(f"workers must be >= 1, got {workers}")
    if workers > 1 and not is_shared(uri):
        raise StartupError(
            f"{workers} workers with rate-limit storage {uri!r}: in-process counters would multiply every "
            "limit by the number of workers; set serve.rate_limit_storage (or $CHURNFLOW_RATE_LIMIT_STORAGE) "
            "to redis://host:port, or use one worker"
        )
    return Startup(served, KeyRing(keys) if keys else None, source, uri, workers)


def prepare_or_exit() -> Startup:
    """:func:`prepare`, or print one line to stderr and exit with :data:`EXIT_REFUSED`."""
    build_only = building_a_bento()
    try:
        startup = prepare(build_only=build_only)
    except (ModelLoadError, StartupError, KeyConfigError, StorageUnavailable, ValueError) as exc:
        print(f"churnflow serve: refusing to start: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_REFUSED) from None
    if startup.keyring is None and not build_only:
        banner = (
            f"!!! {INSECURE_DEV_ENV}=1: serving WITHOUT API KEYS. Anyone who can reach this port can use "
            "every endpoint. Local development only. !!!"
        )
        print(banner, file=sys.stderr, flush=True)
        logger.warning(banner)
    return startup
