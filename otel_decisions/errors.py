"""Error types. Each says what is wrong and how to fix it; the CLI turns one into a message and an
exit code at its boundary, and code that needs the field or the cause reads an attribute, never
the message.

Exit codes: 0 ok; 1 a finding (tampering found by ``verify``, unaccounted task runs); 2 bad
input or settings; 3 no decision store at the configured DSN; 4 the store refused or could not
be reached.

Example::

    from otel_decisions.errors import DecisionValidationError

    try:
        record_decision(type="t", outcome="ok", confidence=1.7)
    except DecisionValidationError as exc:
        print(exc.field)  # "confidence"
"""

from __future__ import annotations


class OtelDecisionsError(Exception):
    """A user-facing error: its message says what is wrong and how to fix it."""

    exit_code: int = 2


class FieldError(OtelDecisionsError, ValueError):
    """A value that is not acceptable; ``field`` names it (a setting, a decision field, a query parameter)."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class SettingsError(FieldError):
    """An invalid setting (keyword of ``configure()`` or ``OTEL_DECISIONS_*`` variable)."""


class DecisionValidationError(FieldError):
    """A decision or review field that fails validation; nothing was recorded."""


class StoreError(OtelDecisionsError):
    """The decision store refused a request or could not be reached."""

    exit_code = 4


class StoreAuthError(StoreError):
    """The store refused the credentials."""


class StoreNotFoundError(StoreError):
    """No decision store at the configured DSN: the database or its tables do not exist."""

    exit_code = 3


class ReviewError(OtelDecisionsError):
    """A review asked for in the Prefect UI could not stand as asked (``decision_ids`` names the decisions)."""

    def __init__(self, message: str, decision_ids: tuple[str, ...] = ()) -> None:
        self.decision_ids = decision_ids
        super().__init__(message)


class ReviewTimeout(ReviewError):
    """No reviewer answered the review form before its deadline (the expiry is recorded; the flow run runs on
    if the caller catches this)."""
