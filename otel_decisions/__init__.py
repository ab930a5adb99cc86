"""otel-decisions: decision-level compliance records for AI workflows on Prefect.

Two lines make every AI decision in your Prefect tasks an OpenTelemetry span with
typed ``decision.*`` attributes, protected by the privacy pipeline before it leaves
the task::

    import otel_decisions
    otel_decisions.configure()                       # settings: OTEL_DECISIONS_* / keywords
    otel_decisions.PrefectInstrumentor().instrument()

Explicit capture inside a task: :func:`record_decision`, :func:`decision`, :func:`record_review`; later
facts about a decision: :func:`record_correction`, :func:`record_notice`. Human review in the Prefect UI,
from a flow: :func:`request_review`, :func:`request_reviews` (async: ``arequest_review``/``arequest_reviews``).
"""

from __future__ import annotations

from otel_decisions._version import __version__
from otel_decisions.capture import (
    Decision,
    decision,
    record_correction,
    record_decision,
    record_decisions,
    record_notice,
    record_review,
)
from otel_decisions.errors import ReviewError, ReviewTimeout
from otel_decisions.instrumentation import PrefectInstrumentor
from otel_decisions.oversight import ReviewResult, arequest_review, arequest_reviews, request_review, request_reviews
from otel_decisions.sdk import configure, force_flush, shutdown
from otel_decisions.semconv import Automation, EventType, LegalBasis, ReviewAction
from otel_decisions.settings import DecisionSettings

__all__ = [
    "Automation",
    "Decision",
    "DecisionSettings",
    "EventType",
    "LegalBasis",
    "PrefectInstrumentor",
    "ReviewAction",
    "ReviewError",
    "ReviewResult",
    "ReviewTimeout",
    "__version__",
    "arequest_review",
    "arequest_reviews",
    "configure",
    "decision",
    "force_flush",
    "record_correction",
    "record_decision",
    "record_decisions",
    "record_notice",
    "record_review",
    "request_review",
    "request_reviews",
    "shutdown",
]
