"""The decision record and the ways to capture one.

- :class:`Decision`: what was decided, validated on construction.
- :func:`record_decision`: record a decision as a ``decision {type}`` span, child of the current
  span (Prefect's task-run span inside a task); returns the recorded :class:`Decision`.
- :func:`decision`: decorator for a function (called inside a task) whose return value is the decision.
- :func:`record_review`: record a human review / override as a ``decision.review`` span linked to it.

Example::

    from otel_decisions import record_decision, record_review

    d = record_decision(type="credit.approval", outcome="deny", confidence=0.91,
                        inputs={"income": 41000, "ssn": "..."}, subject_id="applicant-17",
                        reasons=["debt-to-income ratio too high"], model_name="credit-gbm",
                        model_version="3.2.0", threshold=0.5)
    record_review(d, reviewer="analyst-4", action="override", new_outcome="approve",
                  reason="verified additional income")
"""

from __future__ import annotations

import enum
import dataclasses
import functools
import hashlib
import inspect
import logging
import math
import os
import random
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, overload

from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags

from otel_decisions import semconv
from otel_decisions._runtime import take_refusal
from otel_decisions.clickhouse.mapping import attribute_to_string
from otel_decisions.errors import OtelDecisionsError
from otel_decisions.privacy import PrivacyRecord, to_jsonable

logger = logging.getLogger("otel_decisions")

F = TypeVar("F", bound=Callable[..., Any])

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


_ids = _IdSource()


def new_id() -> str:
    """A random (version 4) UUID from a private, OS-seeded source; unaffected by ``random.seed()``."""
    return _ids.uuid4()


_UUID_TEXT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_AUTOMATION_VALUES = {a.value for a in semconv.Automation}
_ACTION_VALUES = {a.value for a in semconv.ReviewAction}


def _check_probability(field: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy floats, Decimal, numeric strings
        except (TypeError, ValueError):
            raise ValueError(f"{field}: expected a number in [0, 1], got {value!r}") from None
    value = float(value)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{field}: must be a number in [0, 1], got {value!r}; pass a probability, not a percentage or raw score (use score= for that)")
    return value


def _check_number(field: str, value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{field}: expected a number, got {value!r}") from None
    if isinstance(value, bool) or math.isnan(number) or math.isinf(number):
        raise ValueError(f"{field}: expected a finite number, got {value!r}")
    return number


def _check_text(field: str, value: Any, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise ValueError(f"{field}: is required; say what was decided, e.g. outcome='approve'")
        return None
    if isinstance(value, enum.Enum):  # before str: str(StrEnumMember) is 'Class.MEMBER' on 3.11
        text = str(value.value)
    elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
        text = str.__str__(value) if isinstance(value, str) else str(value)
    else:
        text = str(to_jsonable(value))
    if required and not text.strip():
        raise ValueError(f"{field}: must not be empty; say what was decided, e.g. outcome='approve'")
    return text


def _check_list(field: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise ValueError(f"{field}: expected a list of strings, got {type(value).__name__}")
    if type(value) is list and all(type(item) is str for item in value):
        return tuple(value)
    return tuple(str(item.value if hasattr(item, "value") else item) for item in value)


@dataclasses.dataclass(frozen=True)
class Decision:
    """One AI decision. Validated on construction: a bad field raises ``ValueError`` naming it.

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
    id: str = dataclasses.field(default_factory=lambda: new_id())
    timestamp_ns: int | None = None
    trace_id: str | None = None
    span_id: str | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        type_ = self.type if type(self.type) is str else _check_text("type", self.type)
        if not type_ or not type_.strip():
            raise ValueError("type: must not be empty; name the kind of decision, e.g. type='credit.approval'")
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
        for name in ("options", "reasons", "regulations"):
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
                raise ValueError(f"automation: {automation!r} is not one of {sorted(_AUTOMATION_VALUES)}")
            set_(self, "automation", automation)
        if self.review_required is not True and self.review_required is not False:
            raise ValueError(f"review_required: expected True or False, got {self.review_required!r}")
        if not (type(self.id) is str and _UUID_TEXT.match(self.id)):
            try:
                set_(self, "id", str(uuid.UUID(str(self.id))))
            except ValueError:
                raise ValueError(f"id: {self.id!r} is not a UUID; leave it unset to get a new one") from None

    @property
    def span_context(self) -> SpanContext | None:
        """The recorded span's context (for links), if this decision has been recorded."""
        if not (self.trace_id and self.span_id):
            return None
        return SpanContext(int(self.trace_id, 16), int(self.span_id, 16), is_remote=True,
                           trace_flags=TraceFlags(TraceFlags.SAMPLED))


_TEXT_FIELDS = ("rationale", "subject_id", "model_name", "model_version", "model_provider", "policy_version",
                "retention_class", "segment")
_DECISION_FIELDS = {f.name for f in dataclasses.fields(Decision)} - {"id", "timestamp_ns", "trace_id", "span_id"}


# --- integrity chain ------------------------------------------------------------------
UNHASHED_PREFIXES: tuple[str, ...] = ("decision.integrity.", "redaction.")
"""Attributes a record's digest leaves out: the chain's own, and counts a collector's redaction adds."""


def record_digest(attributes: Mapping[str, Any]) -> str:
    """SHA-256 over every attribute of a decision or review record, as stored.

    Values are rendered as the ClickHouse exporters store them (the collector's ``AsString``), so
    ``otel-decisions verify`` recomputes the same digest from ``otel_traces.SpanAttributes``:
    changing any stored field — reasons, confidence, model version, rationale — breaks the chain.
    Each key and value is length-prefixed, so no two different records share a digest input.
    """
    parts = []
    for key in sorted(attributes):
        head = _DIGEST_HEADS.get(key)
        if head is None:
            head = _digest_head(key)
        if not head:
            continue
        value = attributes[key]
        text = value if type(value) is str else attribute_to_string(value)
        parts.append(f"{head}{len(text)}:{text}")
    return hashlib.sha256("".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


_DIGEST_HEADS: dict[str, str] = {}


def _digest_head(key: str) -> str:
    """The length-prefixed key that starts a key's part of a record digest ('' for keys left out)."""
    head = "" if key.startswith(UNHASHED_PREFIXES) else f"{len(key)}:{key}"
    if len(_DIGEST_HEADS) < 10_000:
        _DIGEST_HEADS[key] = head
    return head


def chain_material(prev_hash: str, seq: int, record_id: str, timestamp_ns: int, digest: str) -> bytes:
    """The bytes a chain hash covers: the previous hash, the position, and the record (id, time, digest)."""
    return f"{prev_hash}|{seq}|{record_id}|{timestamp_ns}|{digest}".encode()


class _HashChain:
    """Per-process hash chain over recorded decisions: each hash covers the record and the previous hash.

    A forked child starts a chain of its own (same seq numbers in two processes would look like tampering).
    """

    def __init__(self) -> None:
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self.chain_id = str(uuid.uuid4())
        self._seq = 0
        self._prev = ""
        self._ended = 0
        self._checkpointed = 0

    def unlink(self, seq: int, prev_hash: str) -> None:
        """Take back link *seq* whose record was refused, if nothing was linked after it.

        (With another thread's record already linked behind it, the gap stays and ``verify``
        reports it: the refusal was loud, at the recording call.)
        """
        with self._lock:
            if self._seq == seq:
                self._seq -= 1
                self._prev = prev_hash
                self._ended -= 1  # the caller's ``ended()`` still follows

    def ended(self) -> None:
        """A linked record's span has ended (so it is spooled): checkpoints may cover it."""
        with self._lock:
            self._ended += 1

    def head_for_checkpoint(self) -> tuple[str, int, str] | None:
        """(chain, seq, hash) of the head if it moved since the last checkpoint and no record is in flight."""
        with self._lock:
            if self._seq == self._checkpointed or self._ended != self._seq:
                return None
            self._checkpointed = self._seq
            return self.chain_id, self._seq, self._prev

    def link(self, record_id: str, timestamp_ns: int, digest: str) -> tuple[str, int, str, str]:
        with self._lock:
            self._seq += 1
            prev = self._prev
            current = hashlib.sha256(chain_material(prev, self._seq, record_id, timestamp_ns, digest)).hexdigest()
            self._prev = current
            return self.chain_id, self._seq, current, prev


_chain = _HashChain()


def checkpoint_material(chain_id: str, seq: int, head_hash: str) -> str:
    """The text a checkpoint's HMAC signature covers: the chain head."""
    return f"{chain_id}|{seq}|{head_hash}"


def record_checkpoint() -> bool:
    """Record a signed checkpoint of this process's chain head, if it moved. Never raises.

    Called at the end of every flow run, by ``force_flush()`` and at shutdown: a record deleted
    after a checkpoint is found by ``otel-decisions verify`` even at the end of its chain.
    """
    try:
        head = _chain.head_for_checkpoint()
        if head is None:
            return False
        from otel_decisions.configure import get_runtime

        runtime = get_runtime()
        chain_id, seq, head_hash = head
        attrs = {
            semconv.DECISION_INTEGRITY_CHAIN: chain_id,
            semconv.DECISION_INTEGRITY_SEQ: seq,
            semconv.DECISION_INTEGRITY_HASH: head_hash,
            semconv.DECISION_INTEGRITY_SIGNATURE: runtime.privacy.sign(checkpoint_material(chain_id, seq, head_hash)),
            semconv.DECISION_PSEUDONYM_KEY_ID: runtime.privacy.key_id,
        }
        runtime.tracer.start_span(semconv.CHECKPOINT_SPAN_NAME, kind=SpanKind.INTERNAL, attributes=attrs).end()
        refusal = take_refusal()
        if refusal is not None:
            raise refusal
        return True
    except Exception as exc:  # noqa: BLE001 - a checkpoint must never break the caller
        logger.warning("otel-decisions: could not record an integrity checkpoint: %s", exc)
        return False


# --- bookkeeping shared with the instrumentor -------------------------------------------
class _Registry:
    """Recent decisions (for review links) and per-run counts (flow completeness, auto-capture de-dup)."""

    def __init__(self, max_recent: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._recent: OrderedDict[str, tuple[SpanContext, int, str]] = OrderedDict()
        self._max = max_recent
        self.per_flow: dict[str, int] = {}
        self.per_task: dict[str, int] = {}

    def add(self, decision_id: str, ctx: SpanContext, ts: int, outcome: str, flow_run: str | None, task_run: str | None) -> None:
        with self._lock:
            self._recent[decision_id] = (ctx, ts, outcome)
            if len(self._recent) > self._max:
                self._recent.popitem(last=False)
            if flow_run:
                self.per_flow[flow_run] = self.per_flow.get(flow_run, 0) + 1
            if task_run:
                self.per_task[task_run] = self.per_task.get(task_run, 0) + 1
            # Runs that fail (or end in another process) are never popped: keep the maps bounded.
            for counts in (self.per_flow, self.per_task):
                if len(counts) > self._max:
                    del counts[next(iter(counts))]

    def lookup(self, decision_id: str) -> tuple[SpanContext, int, str] | None:
        with self._lock:
            return self._recent.get(decision_id)

    def pop_flow(self, flow_run: str) -> int:
        with self._lock:
            return self.per_flow.pop(flow_run, 0)

    def pop_task(self, task_run: str) -> int:
        with self._lock:
            return self.per_task.pop(task_run, 0)


registry = _Registry()


def prefect_identity() -> dict[str, str]:
    """``prefect.*`` ids of the current task / flow run (empty outside Prefect)."""
    out: dict[str, str] = {}
    try:
        from prefect.context import FlowRunContext, TaskRunContext
    except ImportError:  # pragma: no cover - prefect is a dependency
        return out
    task_ctx = TaskRunContext.get()
    if task_ctx is not None:
        task_run = task_ctx.task_run
        out[semconv.PREFECT_TASK_RUN_ID] = str(task_run.id)
        out[semconv.PREFECT_TASK_NAME] = task_ctx.task.name
        if task_run.flow_run_id is not None:
            out[semconv.PREFECT_FLOW_RUN_ID] = str(task_run.flow_run_id)
    flow_ctx = FlowRunContext.get()
    if flow_ctx is not None:
        if flow_ctx.flow_run is not None and semconv.PREFECT_FLOW_RUN_ID not in out:
            out[semconv.PREFECT_FLOW_RUN_ID] = str(flow_ctx.flow_run.id)
        if flow_ctx.flow is not None:
            out[semconv.PREFECT_FLOW_NAME] = flow_ctx.flow.name
    return out


# --- recording ---------------------------------------------------------------------------
def _seal(attrs: dict[str, Any], record_id: str, timestamp_ns: int) -> tuple[dict[str, Any], int, str]:
    """Link a finished record (every other attribute set) into this process's hash chain.

    Returns the integrity attributes to add, the link's position and the previous hash."""
    chain_id, seq, chain_hash, prev_hash = _chain.link(record_id, timestamp_ns, record_digest(attrs))
    integrity = {
        semconv.DECISION_INTEGRITY_CHAIN: chain_id,
        semconv.DECISION_INTEGRITY_SEQ: seq,
        semconv.DECISION_INTEGRITY_HASH: chain_hash,
        semconv.DECISION_INTEGRITY_PREV_HASH: prev_hash,
    }
    return integrity, seq, prev_hash


def _record_span(runtime: Any, name: str, attrs: dict[str, Any], record_id: str, now: int,
                 links: Sequence[Link] = ()) -> SpanContext:
    """Record *attrs* as one ended span, sealed into the hash chain; returns its context.

    The span is started first and sealed only if it records: a span the sampler drops is no
    record, so it takes no place in the chain (a sealed-then-dropped link would be a permanent
    gap that ``verify`` reports as a deleted record). The integrity attributes are left out of the
    record digest, so adding them after the start changes nothing they cover.
    """
    span = runtime.tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=attrs, links=links, start_time=now)
    if not span.is_recording():
        span.end(end_time=now)
        return span.get_span_context()
    integrity, seq, prev_hash = _seal(attrs, record_id, now)
    attrs.update(integrity)
    span.set_attributes(integrity)
    try:
        span.end(end_time=now)
        refusal = take_refusal()
        if refusal is not None:
            raise refusal
    except OtelDecisionsError:
        # The store refused the record (spool quota, disk error): not a record, so not a gap.
        # Any other exception (a timeout or cancellation arriving now) may come after the record
        # was spooled, so the link stays.
        _chain.unlink(seq, prev_hash)
        raise
    finally:
        _chain.ended()
    return span.get_span_context()


def _emit(decision: Decision, source: semconv.DecisionSource, raw_inputs_given: bool) -> Decision:
    from otel_decisions.configure import get_runtime

    runtime = get_runtime()
    settings = runtime.settings
    policy = runtime.privacy
    record: PrivacyRecord = policy.new_record()
    now = time.time_ns()

    attrs: dict[str, Any] = {
        semconv.DECISION_ID: decision.id,
        semconv.DECISION_AUTOMATION: decision.automation,
        semconv.DECISION_REVIEW_REQUIRED: decision.review_required,
        semconv.DECISION_SOURCE: source.value,
        semconv.DECISION_PSEUDONYM_KEY_ID: policy.key_id,
    }
    # Inputs first: values masked there are masked in every later free-text field.
    inputs = to_jsonable(decision.inputs if raw_inputs_given else {})
    digest = policy.digest_jsonable(inputs)
    attrs[semconv.DECISION_INPUTS_DIGEST] = digest
    if settings.capture_inputs:
        attrs[semconv.DECISION_INPUTS] = record.json_field(inputs, "inputs", jsonable=True)
    else:
        record.clean_jsonable(inputs, "inputs")  # still learn masked values for the other fields
    attrs[semconv.DECISION_TYPE] = record.short_field(decision.type, "type")
    attrs[semconv.DECISION_OUTCOME] = record.short_field(decision.outcome, "outcome")
    if decision.output is not None and settings.capture_output:
        attrs[semconv.DECISION_OUTPUT] = record.json_field(decision.output, "output")
    if decision.confidence is not None:
        attrs[semconv.DECISION_CONFIDENCE] = decision.confidence
    if decision.score is not None:
        attrs[semconv.DECISION_SCORE] = decision.score
    if decision.threshold is not None:
        attrs[semconv.DECISION_THRESHOLD] = decision.threshold
    if decision.options:
        attrs[semconv.DECISION_OPTIONS] = [record.short_field(o, "options", i) for i, o in enumerate(decision.options)]
    if decision.rationale is not None:
        attrs[semconv.DECISION_RATIONALE] = record.text_field(decision.rationale, "rationale")
    if decision.reasons:
        attrs[semconv.DECISION_REASONS] = [record.text_field(r, "reasons", i) for i, r in enumerate(decision.reasons)]
    if decision.subject_id is not None:
        attrs[semconv.DECISION_SUBJECT_ID] = policy.pseudonymise(decision.subject_id)
    if decision.model_name is not None:
        attrs[semconv.DECISION_MODEL_NAME] = attrs[semconv.GEN_AI_REQUEST_MODEL] = record.short_field(decision.model_name, "model.name")
    if decision.model_version is not None:
        attrs[semconv.DECISION_MODEL_VERSION] = record.short_field(decision.model_version, "model.version")
    if decision.model_provider is not None:
        attrs[semconv.DECISION_MODEL_PROVIDER] = attrs[semconv.GEN_AI_PROVIDER_NAME] = record.short_field(decision.model_provider, "model.provider")
    if decision.policy_version is not None:
        attrs[semconv.DECISION_POLICY_VERSION] = record.short_field(decision.policy_version, "policy.version")
    if decision.regulations:
        attrs[semconv.DECISION_REGULATIONS] = [record.short_field(r, "regulations", i) for i, r in enumerate(decision.regulations)]
    if decision.retention_class is not None:
        attrs[semconv.DECISION_RETENTION_CLASS] = record.short_field(decision.retention_class, "retention.class")
    if decision.segment is not None:
        attrs[semconv.DECISION_SEGMENT] = record.text_field(decision.segment, "segment")
    if record.redacted:
        attrs[semconv.DECISION_REDACTED] = record.redacted
    identity = prefect_identity()
    attrs.update(identity)
    ctx = _record_span(runtime, semconv.DECISION_SPAN_PREFIX + attrs[semconv.DECISION_TYPE], attrs, decision.id, now)
    if not ctx.trace_flags.sampled:
        runtime.warn_once(
            "unsampled",
            "otel-decisions: a decision span was not recorded (no SDK tracer provider, or a sampler "
            "dropped it). Call otel_decisions.configure() at start-up so decisions are kept.",
        )
    recorded = object.__new__(Decision)  # a copy: fields are already validated, no second __post_init__
    recorded.__dict__.update(decision.__dict__)
    object.__setattr__(recorded, "timestamp_ns", now)
    object.__setattr__(recorded, "trace_id", format(ctx.trace_id, "032x"))
    object.__setattr__(recorded, "span_id", format(ctx.span_id, "016x"))
    registry.add(decision.id, ctx, now, attrs[semconv.DECISION_OUTCOME],  # the outcome as stored (scrubbed)
                 identity.get(semconv.PREFECT_FLOW_RUN_ID), identity.get(semconv.PREFECT_TASK_RUN_ID))
    return recorded


def record_decision(decision: Decision | None = None, /, **fields: Any) -> Decision:
    """Record one decision as a span and return it with its ``id``, timestamp and span ids.

    Pass a :class:`Decision`, or its fields as keywords (``type``, ``outcome``, ``confidence``,
    ``inputs``, ``reasons``, ...). Invalid fields raise ``ValueError`` naming the field; nothing
    is recorded then. Can be called many times in one task (e.g. batch scoring).
    """
    if decision is None:
        unknown = sorted(set(fields) - _DECISION_FIELDS - {"id"})
        if unknown:
            raise ValueError(
                f"unknown decision field(s) {', '.join(unknown)}; known fields: {', '.join(sorted(_DECISION_FIELDS))}"
            )
        if "type" not in fields:
            raise ValueError("type: is required; name the kind of decision, e.g. type='credit.approval'")
        if "outcome" not in fields:
            raise ValueError("outcome: is required; say what was decided, e.g. outcome='approve'")
        decision = Decision(**fields)
        inputs_given = "inputs" in fields
    else:
        if fields:
            decision = dataclasses.replace(decision, **fields)
        inputs_given = decision.inputs is not None
    return _emit(decision, semconv.DecisionSource.EXPLICIT, inputs_given)


# --- decorator ----------------------------------------------------------------------------
@overload
def decision(fn: F, /) -> F: ...
@overload
def decision(fn: None = None, /, **defaults: Any) -> Callable[[F], F]: ...


def decision(fn: Callable[..., Any] | None = None, /, **defaults: Any) -> Any:
    """Decorate a function (called inside a task) whose return value is the decision.

    The function's bound arguments become ``inputs``; its return value may be a
    :class:`Decision`, a decision-shaped mapping / model / dataclass, or a plain outcome
    (str). Keyword arguments (``type=...``, ``model_version=...``) fill fields the return
    value leaves empty. The function's return value is passed through unchanged.
    """
    unknown = sorted(set(defaults) - _DECISION_FIELDS)
    if unknown:
        raise ValueError(f"@decision: unknown field(s) {', '.join(unknown)}; known fields: {', '.join(sorted(_DECISION_FIELDS))}")

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(func)
        dtype = defaults.get("type") or f"{func.__module__}.{func.__qualname__}"

        def capture(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
            try:
                bound = signature.bind_partial(*args, **kwargs)
                bound.apply_defaults()
                inputs = dict(bound.arguments)
                built = decision_from_value(result, inputs=inputs, defaults={**defaults, "type": dtype},
                                            outcome_fields=None, confidence_fields=None, require_confidence=False)
                if built is None:
                    from otel_decisions.configure import get_runtime

                    get_runtime().warn_once(
                        f"decorator-shape:{dtype}",
                        f"otel-decisions: @decision function {func.__qualname__} returned a "
                        f"{type(result).__name__} with no outcome field; nothing recorded. Return a Decision, "
                        "a str outcome, or a mapping with an 'outcome' field.",
                    )
                    return
                _emit(built, semconv.DecisionSource.DECORATOR, True)
            except Exception as exc:  # noqa: BLE001 - never break the user's function
                from otel_decisions.configure import get_runtime

                get_runtime().warn_once(f"decorator:{dtype}:{type(exc).__name__}",
                                        f"otel-decisions: could not record the decision of {func.__qualname__}: {exc}")

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                result = await func(*args, **kwargs)
                capture(args, kwargs, result)
                return result

            return async_wrapper

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = func(*args, **kwargs)
            capture(args, kwargs, result)
            return result

        return wrapper

    if fn is not None:
        return wrap(fn)
    return wrap


# --- shape detection (zero-code capture) -----------------------------------------------
_ALIASES: dict[str, tuple[str, ...]] = {
    "type": ("decision_type", "type"),
    "rationale": ("rationale", "explanation", "justification"),
    "reasons": ("reasons", "principal_reasons", "reason_codes", "top_reasons", "adverse_reasons"),
    "options": ("options", "alternatives", "classes", "candidates"),
    "threshold": ("threshold", "cutoff", "cut_off"),
    "model_name": ("model_name", "model"),
    "model_version": ("model_version",),
    "model_provider": ("model_provider", "provider"),
    "policy_version": ("policy_version",),
    "subject_id": ("subject_id", "subject"),
    "review_required": ("review_required", "needs_review", "requires_review"),
    "automation": ("automation",),
    "regulations": ("regulations",),
    "segment": ("segment",),
}


def _as_mapping(value: Any) -> Mapping[str, Any] | None:
    if isinstance(value, Mapping):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump) and hasattr(type(value), "model_fields"):
        try:
            return model_dump()
        except Exception:  # noqa: BLE001
            return None
    return None


def decision_from_value(
    value: Any,
    *,
    inputs: Any,
    defaults: Mapping[str, Any],
    outcome_fields: Sequence[str] | None,
    confidence_fields: Sequence[str] | None,
    require_confidence: bool = True,
) -> Decision | None:
    """Build a :class:`Decision` from a task's or function's return value, or ``None`` if it is not decision-shaped.

    Raises ``ValueError`` (naming the field) when the value is decision-shaped but a field is invalid.
    """
    from otel_decisions.config import DEFAULT_CONFIDENCE_FIELDS, DEFAULT_OUTCOME_FIELDS

    if isinstance(value, Decision):
        fields = {f: getattr(value, f) for f in _DECISION_FIELDS}
        if value.inputs is None:
            fields["inputs"] = inputs
        for key, default in defaults.items():
            if fields.get(key) in (None, (), "") and key != "type":
                fields[key] = default
        return Decision(id=value.id, **fields)
    if isinstance(value, str) and not require_confidence:
        return Decision(**{**defaults, "outcome": value, "inputs": inputs})
    mapping = _as_mapping(value)
    if mapping is None:
        return None
    outcome_keys = outcome_fields or DEFAULT_OUTCOME_FIELDS
    confidence_keys = confidence_fields or DEFAULT_CONFIDENCE_FIELDS
    outcome_key = next((k for k in outcome_keys if k in mapping and _is_scalar(mapping[k])), None)
    if outcome_key is None:
        return None
    confidence_key = next((k for k in confidence_keys if k in mapping and _is_number(mapping[k])), None)
    if confidence_key is None and require_confidence:
        return None
    fields: dict[str, Any] = {"outcome": mapping[outcome_key], "inputs": inputs, "output": value}
    if confidence_key is not None:
        raw = mapping[confidence_key]
        if confidence_key == "score" and not (0.0 <= float(raw) <= 1.0):
            fields["score"] = raw  # a raw score, not a probability
        else:
            fields["confidence"] = raw
            if "score" in mapping and confidence_key != "score" and _is_number(mapping["score"]):
                fields["score"] = mapping["score"]
    for field, aliases in _ALIASES.items():
        for alias in aliases:
            if alias in mapping and mapping[alias] is not None and alias not in (outcome_key, confidence_key):
                fields[field] = mapping[alias]
                break
    for key, default in defaults.items():
        fields.setdefault(key, default)
    # Only an explicit decision_id names the decision: a generic "id" is usually the application's
    # or the subject's, and reusing it would merge different decisions into one record.
    if isinstance(mapping.get("decision_id"), str):
        try:
            fields["id"] = str(uuid.UUID(mapping["decision_id"]))
        except ValueError:
            pass
    return Decision(**fields)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, bool)) or (hasattr(value, "value") and isinstance(value.value, str))


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return hasattr(value, "dtype") and hasattr(value, "item")  # numpy scalar


# --- reviews ------------------------------------------------------------------------------
def record_review(
    decision: Decision | str,
    /,
    *,
    reviewer: str,
    action: str | semconv.ReviewAction,
    reason: str | None = None,
    new_outcome: str | None = None,
    original_outcome: str | None = None,
) -> str:
    """Record a human review or override of *decision* (a :class:`Decision` or its id).

    Makes a ``decision.review`` span carrying ``decision.id`` and a link to the decision's span
    (when known: the decision object carries it, or it was recorded in this process). Works from
    a later flow run. Returns the review id.
    """
    from otel_decisions.configure import get_runtime

    if isinstance(decision, Decision):
        decision_id = decision.id
        link_ctx = decision.span_context
        decided_at = decision.timestamp_ns
        original = original_outcome
    else:
        decision_id = str(decision)
        link_ctx, decided_at, original = None, None, original_outcome
    try:
        uuid.UUID(decision_id)
    except ValueError:
        raise ValueError(f"decision: {decision_id!r} is not a decision id (UUID); pass the Decision returned by record_decision") from None
    if not reviewer or not str(reviewer).strip():
        raise ValueError("reviewer: is required; pass the reviewer's user id (it is pseudonymised)")
    action_value = action.value if isinstance(action, semconv.ReviewAction) else str(action)
    if action_value not in _ACTION_VALUES:
        raise ValueError(f"action: {action_value!r} is not one of {sorted(_ACTION_VALUES)}")
    if action_value == semconv.ReviewAction.OVERRIDE.value and not new_outcome:
        raise ValueError("new_outcome: an override needs the outcome the reviewer chose")
    known = registry.lookup(decision_id)
    if known is not None:
        link_ctx = link_ctx or known[0]
        decided_at = decided_at or known[1]
        original = original or known[2]
    if original is None and isinstance(decision, Decision):
        original = decision.outcome

    runtime = get_runtime()
    policy = runtime.privacy
    record = policy.new_record()
    if isinstance(decision, Decision) and decision.inputs is not None:
        # learn what the decision's inputs mask, so the review's free text masks it too
        record.clean_mapping(decision.inputs, "inputs")
        record.redacted.clear()
    review_id = str(uuid.uuid4())
    attrs: dict[str, Any] = {
        semconv.DECISION_ID: decision_id,
        semconv.DECISION_REVIEW_ID: review_id,
        semconv.DECISION_REVIEW_REVIEWER_ID: policy.pseudonymise(reviewer),
        semconv.DECISION_REVIEW_ACTION: action_value,
        semconv.DECISION_PSEUDONYM_KEY_ID: policy.key_id,
    }
    if reason is not None:
        attrs[semconv.DECISION_REVIEW_REASON] = record.text_field(reason, "review.reason")
    if original is not None:
        attrs[semconv.DECISION_REVIEW_ORIGINAL_OUTCOME] = record.short_field(original, "review.original_outcome")
    if new_outcome is not None:
        attrs[semconv.DECISION_REVIEW_NEW_OUTCOME] = record.short_field(new_outcome, "review.new_outcome")
    if decided_at is not None:
        attrs[semconv.DECISION_REVIEW_DECIDED_AT] = int(decided_at)
    if record.redacted:
        attrs[semconv.DECISION_REDACTED] = record.redacted
    attrs.update(prefect_identity())
    links = [Link(link_ctx, {semconv.DECISION_ID: decision_id})] if link_ctx is not None else []
    now = time.time_ns()
    _record_span(runtime, semconv.REVIEW_SPAN_NAME, attrs, review_id, now, links)  # reviews are chain links too
    return review_id

