"""API keys: from ``$CHURNFLOW_API_KEYS`` or a file, held only as SHA-256 digests, checked in constant time.

Entry format (comma-separated in the variable, one per line in the file; ``#`` starts a comment):
``<key>[:<requests_per_hour>]`` or ``sha256:<64 hex>[:<requests_per_hour>]`` (the file then holds no secret).
Invariant: the plain key is hashed on arrival and never stored, logged or used as a rate-limit key; a key
is identified by ``key_id`` (the first 12 hex digits of its digest).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: Environment variable naming a file of key entries (used when the keys variable is unset or empty).
KEYS_FILE_ENV = "CHURNFLOW_API_KEYS_FILE"
#: Environment variable that, set to ``1``/``true``, lets the service run without keys (local development).
INSECURE_DEV_ENV = "CHURNFLOW_INSECURE_DEV"

_HASHED = re.compile(r"^sha256:([0-9a-fA-F]{64})(?::(\d+))?$")
_RATE = re.compile(r"^(.*):(\d+)$")


class KeyConfigError(ValueError):
    """The key configuration is unusable (the message says which entry, never the key itself)."""


@dataclass(frozen=True)
class ApiKey:
    """One accepted key: its digest, a short public id and its hourly request budget."""

    digest: bytes
    key_id: str
    requests_per_hour: int


def digest(key: str) -> bytes:
    """SHA-256 of the key's UTF-8 bytes."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def parse_entries(entries: Iterable[str], default_rph: int, min_key_length: int) -> tuple[ApiKey, ...]:
    """Key entries → :class:`ApiKey` tuple (blank entries skipped). KeyConfigError names the entry number."""
    keys: list[ApiKey] = []
    seen: set[bytes] = set()
    for number, raw in enumerate(entries, start=1):
        entry = raw.strip()
        if not entry:
            continue
        hashed = _HASHED.match(entry)
        if hashed:
            key_digest = bytes.fromhex(hashed.group(1))
            rate_text = hashed.group(2)
        else:
            rated = _RATE.match(entry)
            secret, rate_text = (rated.group(1), rated.group(2)) if rated else (entry, None)
            if len(secret) < min_key_length:
                raise KeyConfigError(
                    f"API key entry {number} is shorter than serve.min_key_length={min_key_length} characters"
                )
            key_digest = digest(secret)
        rph = int(rate_text) if rate_text is not None else default_rph
        if rph <= 0:
            raise KeyConfigError(f"API key entry {number}: requests_per_hour must be > 0")
        if key_digest in seen:
            raise KeyConfigError(f"API key entry {number} repeats an earlier key")
        seen.add(key_digest)
        keys.append(ApiKey(key_digest, key_digest.hex()[:12], rph))
    return tuple(keys)


def read_key_entries(keys_env: str, environ: dict[str, str] | None = None) -> tuple[list[str], str]:
    """Entries from ``$keys_env`` (comma-separated), else from the file named by ``$CHURNFLOW_API_KEYS_FILE``.

    Returns ``(entries, source description)``; no entries → ``([], "none")``.
    """
    env = os.environ if environ is None else environ
    inline = env.get(keys_env, "")
    if inline.strip():
        return inline.split(","), f"${keys_env}"
    path_text = env.get(KEYS_FILE_ENV, "").strip()
    if path_text:
        path = Path(path_text)
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise KeyConfigError(
                f"${KEYS_FILE_ENV}={path}: cannot read the key file ({exc.strerror})"
            ) from exc
        return [line.split("#", 1)[0] for line in lines], f"${KEYS_FILE_ENV} ({path})"
    return [], "none"


def insecure_dev_enabled(environ: dict[str, str] | None = None) -> bool:
    """True when ``$CHURNFLOW_INSECURE_DEV`` is ``1``/``true``/``yes`` (case-insensitive)."""
    env = os.environ if environ is None else environ
    return env.get(INSECURE_DEV_ENV, "").strip().lower() in {"1", "true", "yes"}


class KeyRing:
    """The accepted keys; :meth:`lookup` compares a presented key with every digest in constant time."""

    def __init__(self, keys: tuple[ApiKey, ...]) -> None:
        self.keys = keys

    def __len__(self) -> int:
        return len(self.keys)

    def lookup(self, presented: str) -> ApiKey | None:
        """The :class:`ApiKey` whose digest equals the presented key's, else None.

        Every stored digest is compared (``hmac.compare_digest``), so the time does not depend on which
        key matched or how many leading bytes agree.
        """
        candidate = digest(presented)
        found: ApiKey | None = None
        for key in self.keys:
            if hmac.compare_digest(candidate, key.digest):
                found = key
        return found


def extract_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` (first wins), else None."""
    for name, value in headers:
        lname = name.lower()
        if lname == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif lname == b"x-api-key" and value.strip():
            return value.decode("latin-1").strip()
    return None
