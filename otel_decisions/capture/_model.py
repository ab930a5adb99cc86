"""The decision record: :class:`Decision`, its validation, and decision ids.

A bad field raises :class:`~otel_decisions.errors.DecisionValidationError` naming it.

Example::

    from otel_decisions.capture import Decision

    d = Decision(type="credit.approval", outcome="deny", confidence=0.91)
"""

from __future__ import annotations

import dataclasses
import enum
import math
import os
import random
import re
import uuid
from typing import Any

from opentelemetry.trace import SpanContext, TraceFlags

from otel_decisions import semconv
from otel_decisions.errors import DecisionValidationError
from otel_decisions.privacy import to_jsonable


class _IdSource:
    """A private generator for decision ids, seeded from the OS and re-seeded in a forked child.

    Not the global ``random`` module: an application that calls ``random.seed(42)`` (every
    reproducible ML script does) would otherwise replay the same ids, and ``decision.id`` is the
    deduplication key of the store, so a second run's decisions would silently merge into the
    first's. Not ``os.urandom`` per id either: ids must be unique, not secret, and the syscall costs
    more than the rest of a decision's validation.
    """

    def __init__(self) -> None:
        self._random = random.Random(os.urandom(32))
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._random = random.Random(os.urandom(32))

    def uuid4(self) -> str:
        bits = self._random.getrandbits(128)
        bits = (bits & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC000 << 48) | (0x8000 << 48)
        h = f"{bits:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def uuid4_many(self, count: int) -> list[str]:
        """*count* ids as :meth:`uuid4` makes them, from one draw."""
        text = format(self._random.getrandbits(128 * count), f"0{32 * count}x") if count else ""
        variant = _VARIANT
        return [
            f"{text[i : i + 8]}-{text[i + 8 : i + 12]}-4{text[i + 13 : i + 16]}-{variant[text[i + 16]]}"
            f"{text[i + 17 : i + 20]}-{text[i + 20 : i + 32]}"
            for i in range(0, 32 * count, 32)
        ]


_VARIANT = {digit: format(int(digit, 16) & 0x3 | 0x8, "x") for digit in "0123456789abcdef"}
_ids = _IdSource()


def new_id() -> str:
    """A random (version 4) UUID from a private, OS-seeded source; unaffected by ``random.seed()``."""
    return _ids.uuid4()


def new_ids(count: int) -> list[str]:
    """*count* ids as :func:`new_id` makes them (cheaper per id)."""
    return _ids.uuid4_many(count)


_UUID_TEXT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_AUTOMATION_VALUES = {a.value for a in semconv.Automation}
_LEGAL_BASIS_VALUES = {b.value for b in semconv.LegalBasis}
_ACTION_VALUES = {a.value for a in semconv.ReviewAction}


def _check_probability(field: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy floats, Decimal, numeric strings
        except (TypeError, ValueError):
            raise DecisionValidationError(field, f"expected a number in [0, 1], got {value!r}") from None
    value = float(value)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise DecisionValidationError(
            field,
            f"must be a number in [0, 1], got {value!r}; pass a probability, not a percentage or raw score (use score= for that)",
        )
    return value


def _check_number(field: str, value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DecisionValidationError(field, f"expected a number, got {value!r}") from None
    if isinstance(value, bool) or math.isnan(number) or math.isinf(number):
        raise DecisionValidationError(field, f"expected a finite number, got {value!r}")
    return number


def _check_text(field: str, value: Any, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise DecisionValidationError(field, "is required; say what was decided, e.g. outcome='approve'")
        return None
    if isinstance(value, enum.Enum):  # before str: str(StrEnumMember) is 'Class.MEMBER' on 3.11
        text = str(value.value)
    elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
        text = str.__str__(value) if isinstance(value, str) else str(value)
    else:
        text = str(to_jsonable(value))
    if required and not text.strip():
        raise DecisionValidationError(field, "must not be empty; say what was decided, e.g. outcome='approve'")
    return text


def _check_list(field: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise DecisionValidationError(field, f"expected a list of strings, got {type(value).__name__}")
    if type(value) is list and all(type(item) is str for item in value):
        return tuple(value)
    return tuple(str(item.value if hasattr(item, "value") else item) for item in value)


@dataclasses.dataclass(frozen=True)
class Decision:
    """One AI decision. Validated on construction: a bad field raises :class:`~otel_decisions.errors.DecisionValidationError` (a ``ValueError``) whose ``field`` names it.

    ``id``, ``timestamp_ns``, ``trace_id`` and ``span_id`` are filled when the decision is recorded.
    """

    type: str
    outcome: str
    confidence: float | None = None
    score: float | None = None
    threshold: float | None = None
    options: tuple[str, ...] = ()
    rationale: str | None = None
    reasons: tuple[str, ...] = ()
    inputs: Any = None
    output: Any = None
    subject_id: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    model_provider: str | None = None
    policy_version: str | None = None
    automation: str = semconv.Automation.AUTOMATED.value
    review_required: bool = False
    regulations: tuple[str, ...] = ()
    retention_class: str | None = None
    segment: str | None = None
    legal_basis: str | None = None
    data_sources: tuple[str, ...] = ()
    dataset_versions: tuple[str, ...] = ()
    id: str = dataclasses.field(default_factory=lambda: new_id())
    timestamp_ns: int | None = None
    trace_id: str | None = None
    span_id: str | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        type_ = self.type if type(self.type) is str else _check_text("type", self.type)
        if not type_ or not type_.strip():
            raise DecisionValidationError(
                "type", "must not be empty; name the kind of decision, e.g. type='credit.approval'"
            )
        set_(self, "type", type_)
        outcome = self.outcome
        if type(outcome) is not str or not outcome.strip():
            set_(self, "outcome", _check_text("outcome", outcome, required=True))
        confidence = self.confidence
        if confidence is not None and not (type(confidence) is float and 0.0 <= confidence <= 1.0):
            set_(self, "confidence", _check_probability("confidence", confidence))
        for name in ("score", "threshold"):
            value = getattr(self, name)
            if value is not None and not (type(value) is float and math.isfinite(value)):
                set_(self, name, _check_number(name, value))
        for name in ("options", "reasons", "regulations", "data_sources", "dataset_versions"):
            value = getattr(self, name)
            if type(value) is not tuple or not all(type(item) is str for item in value):
                set_(self, name, _check_list(name, value))
        for name in _TEXT_FIELDS:
            value = getattr(self, name)
            if value is not None and type(value) is not str:
                set_(self, name, _check_text(name, value))
        automation = self.automation
        if type(automation) is not str or automation not in _AUTOMATION_VALUES:
            automation = _check_text("automation", automation) or semconv.Automation.AUTOMATED.value
            if automation not in _AUTOMATION_VALUES:
                raise DecisionValidationError(
                    "automation", f"{automation!r} is not one of {sorted(_AUTOMATION_VALUES)}"
                )
            set_(self, "automation", automation)
        legal_basis = self.legal_basis
        if legal_basis is not None and (type(legal_basis) is not str or legal_basis not in _LEGAL_BASIS_VALUES):
            legal_basis = _check_text("legal_basis", legal_basis)
            if legal_basis not in _LEGAL_BASIS_VALUES:
                raise DecisionValidationError(
                    "legal_basis",
                    f"{legal_basis!r} is not one of {sorted(_LEGAL_BASIS_VALUES)} (GDPR Art. 22(2)(a) contract, "
                    "(b) law, (c) explicit consent)",
                )
            set_(self, "legal_basis", legal_basis)
        if self.review_required is not True and self.review_required is not False:
            raise DecisionValidationError("review_required", f"expected True or False, got {self.review_required!r}")
        if not (type(self.id) is str and _UUID_TEXT.match(self.id)):
            try:
                set_(self, "id", str(uuid.UUID(str(self.id))))
            except ValueError:
                raise DecisionValidationError(
                    "id", f"{self.id!r} is not a UUID; leave it unset to get a new one"
                ) from None

    @property
    def span_context(self) -> SpanContext | None:
        """The recorded span's context (for links), if this decision has been recorded."""
        if not (self.trace_id and self.span_id):
            return None
        return SpanContext(
            int(self.trace_id, 16), int(self.span_id, 16), is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
        )


_TEXT_FIELDS = (
    "rationale",
    "subject_id",
    "model_name",
    "model_version",
    "model_provider",
    "policy_version",
    "retention_class",
    "segment",
)
_DECISION_FIELDS = {f.name for f in dataclasses.fields(Decision)} - {"id", "timestamp_ns", "trace_id", "span_id"}
