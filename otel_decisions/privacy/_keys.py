"""The HMAC key behind pseudonyms, the inputs digest and checkpoint signatures, and its public id.

Example::

    from otel_decisions.privacy import key_id, resolve_hmac_key

    key = resolve_hmac_key(settings)  # configured, or generated once into data_dir/hmac.key (0600)
    print(key_id(key))
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets

from otel_decisions.errors import SettingsError
from otel_decisions.settings import DecisionSettings

logger = logging.getLogger("otel_decisions")


def key_id(key: bytes) -> str:
    """Public identifier of an HMAC key: 16 hex digits of HMAC(key, "otel-decisions key id").

    Keyed, so publishing it on every span gives no offline test for guessing a weak key.
    """
    return hmac.new(key, b"otel-decisions key id", hashlib.sha256).hexdigest()[:16]


def existing_hmac_key(settings: DecisionSettings) -> bytes | None:
    """The configured or kept key, or ``None`` if there is none yet (never creates one: a verifier or an
    operator's command must not mint a key the records were not made with)."""
    if settings.hmac_key is not None or (settings.data_dir / "hmac.key").exists():
        return resolve_hmac_key(settings)
    return None


def resolve_hmac_key(settings: DecisionSettings) -> bytes:
    """The HMAC key: the configured one, else one generated once and kept (0600) in ``data_dir``."""
    if settings.hmac_key is not None:
        key = settings.hmac_key.get_secret_value().encode()
        if len(key) < 16:
            raise SettingsError("hmac_key", "must be at least 16 characters; generate one with `openssl rand -hex 32`")
        return key
    path = settings.data_dir / "hmac.key"
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_hex(32).encode()
    tmp = path.with_name(f".hmac.key.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic: fails if another process published its key first
    except FileExistsError:
        return path.read_bytes().strip()
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    logger.warning(
        "otel-decisions: no hmac_key configured; generated one at %s. Set OTEL_DECISIONS_HMAC_KEY "
        "to the same secret on every machine so pseudonyms match across hosts.",
        path,
    )
    return key
