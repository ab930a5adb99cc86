"""ClickHouse errors as otel-decisions error types, by the server's error code (never by message text).

Example::

    from otel_decisions.store.errors import store_error

    try:
        client.query(sql)
    except Exception as exc:
        raise store_error(exc, "query 'overrides'") from exc
"""

from __future__ import annotations

from otel_decisions.errors import StoreAuthError, StoreError, StoreNotFoundError

UNKNOWN_TABLE = 60
UNKNOWN_DATABASE = 81
UNKNOWN_USER = 192
REQUIRED_PASSWORD = 194
WRONG_PASSWORD = 193
AUTHENTICATION_FAILED = 516
ACCESS_DENIED = 497

_AUTH_CODES = frozenset({UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD, AUTHENTICATION_FAILED})
_MISSING_CODES = frozenset({UNKNOWN_TABLE, UNKNOWN_DATABASE})


def error_code(exc: BaseException) -> int | None:
    """ClickHouse's numeric error code carried by a clickhouse-connect error (``None`` if unknown)."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


def first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def store_error(exc: BaseException, what: str) -> StoreError:
    """The otel-decisions error for *exc* raised while doing *what* (e.g. ``"query 'overrides'"``)."""
    code = error_code(exc)
    if code in _MISSING_CODES:
        return StoreNotFoundError(
            f"{what}: no decision store here (the decision tables are missing); run `otel-decisions schema apply` "
            f"against this DSN, or point --dsn / OTEL_DECISIONS_DSN at the store that holds your decisions ({first_line(exc)})"
        )
    if code in _AUTH_CODES:
        return StoreAuthError(f"{what}: the store rejected the credentials; check the user and password in the DSN")
    if code == ACCESS_DENIED:
        return StoreAuthError(
            f"{what}: this user may not do that ({first_line(exc)}); use a user with the right role (admin for schema and lifecycle)"
        )
    return StoreError(f"{what} failed: {first_line(exc)}")
