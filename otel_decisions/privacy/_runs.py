"""Values masked for a Prefect run, so its run spans (Prefect's own included) mask them too.

A value the policy masks in a task run's parameters or in a decision recorded there (a surname
under ``last_name``, a national insurance number under ``national_insurance_number``) can reappear
in that task run's span name (``task_run_name="kyc-{applicant[last_name]}"``), in
``prefect.run.name``, in state messages and in an exception's message and stack trace, and in the
same places of its flow run's span. :data:`run_values` remembers, per task run and flow run id,
the masked values; run-span scrubbing replaces each occurrence with the redaction sentinel. An
entry is dropped when its run's span has been scrubbed; the table is bounded, and a run whose
values did not all fit is marked incomplete (its spans are withheld, not scrubbed with a part).
Values are per process: what a pool or Dask worker masked reaches the task run's span (ended in
that worker), not the flow run's span in the flow's process.

Only values the key policy masks are remembered (free-text patterns are matched in the span text
itself), and only those long enough to be specific (4+ characters).

Example::

    from otel_decisions.privacy import masked_parameter_values, run_values

    run_values.add([task_run_id, flow_run_id], masked_parameter_values(policy, {"last_name": "Quennell"}))
    run_values.get(task_run_id)  # frozenset({'Quennell'})
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import threading
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from otel_decisions.privacy._policy import PrivacyPolicy, compact_form

MIN_REMEMBERED = 4
"""Masked values shorter than this are not searched for elsewhere (too likely to be ordinary text)."""

MAX_REMEMBERED = 256
"""Longer masked values are not searched for (free-text detection still applies to them)."""

_MAX_RUNS = 8192
_MAX_VALUES_PER_RUN = 4096
_MAX_NODES = 2000
"""Parameters are walked at most this far (a big data frame is not templated into a run name)."""


class RunValues:
    """Masked values per run id (thread-safe, bounded). A run whose values were not all kept (too
    many, or its entry was forgotten to make room) is *incomplete*: its spans must be withheld
    rather than scrubbed with what is left."""

    def __init__(self, max_runs: int = _MAX_RUNS, max_values: int = _MAX_VALUES_PER_RUN) -> None:
        self._values: dict[str, set[str]] = {}
        self._incomplete: dict[str, None] = {}
        self._lock = threading.Lock()
        self._max_runs = max_runs
        self._max_values = max_values

    def add(self, run_ids: Iterable[str | None], values: Iterable[str]) -> None:
        """Remember *values* for every run in *run_ids* (``None`` ids are skipped)."""
        chosen = [v for v in values if MIN_REMEMBERED <= len(v) <= MAX_REMEMBERED]
        if not chosen:
            return
        with self._lock:
            for run_id in run_ids:
                if not run_id:
                    continue
                known = self._values.get(run_id)
                if known is None:
                    if len(self._values) >= self._max_runs:
                        evicted = next(iter(self._values))
                        del self._values[evicted]
                        self._mark_incomplete(evicted)
                    known = self._values[run_id] = set()
                known.update(chosen)
                if len(known) > self._max_values:
                    self._mark_incomplete(run_id)
                    while len(known) > self._max_values:
                        known.pop()

    def _mark_incomplete(self, run_id: str) -> None:
        self._incomplete[run_id] = None
        while len(self._incomplete) > self._max_runs:
            self._incomplete.pop(next(iter(self._incomplete)))

    def get(self, run_id: str | None) -> frozenset[str]:
        if not run_id:
            return frozenset()
        with self._lock:
            known = self._values.get(run_id)
            return frozenset(known) if known else frozenset()

    def incomplete(self, run_id: str | None) -> bool:
        """Whether some of *run_id*'s masked values were not kept (its spans cannot be scrubbed fully)."""
        if not run_id:
            return False
        with self._lock:
            return run_id in self._incomplete

    def discard(self, run_id: str | None) -> None:
        if run_id:
            with self._lock:
                self._values.pop(run_id, None)
                self._incomplete.pop(run_id, None)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._incomplete.clear()


run_values = RunValues()
"""The process's table (a run's spans end in the process that ran it)."""


def masked_parameter_values(policy: PrivacyPolicy, parameters: Mapping[str, Any] | None) -> set[str]:
    """The values the key policy masks in a run's parameters: every leaf under a masked key (also in
    nested mappings, lists, dataclasses and pydantic models), as text. Bounded in how far it walks."""
    found: set[str] = set()
    if not parameters:
        return found
    budget = [_MAX_NODES]
    try:
        _walk(policy, parameters, False, found, budget, 0)
    except _Exhausted:
        pass
    return found


class _Exhausted(Exception):
    pass


def _walk(policy: PrivacyPolicy, value: Any, masked: bool, found: set[str], budget: list[int], depth: int) -> None:
    budget[0] -= 1
    if budget[0] < 0 or depth > 32:
        raise _Exhausted
    kind = type(value)
    if kind is str or kind is int or kind is float:
        if masked:
            _found(found, str(value))
        return
    if value is None or kind is bool:
        return
    items = _children(value)
    if items is None:
        if masked and isinstance(value, _SCALARS):
            # a date, UUID, Decimal, enum member...: as a run name template writes it
            _found(found, str(value.value) if isinstance(value, enum.Enum) else str(value))
        return
    for key, item in items:
        _walk(policy, item, masked or (key is not None and policy.is_masked_key(key)), found, budget, depth + 1)


_SCALARS = (str, int, float, datetime.date, datetime.time, datetime.timedelta, uuid.UUID, decimal.Decimal, enum.Enum)


def _found(found: set[str], text: str) -> None:
    found.add(text)
    compact = compact_form(text)
    if compact is not None:
        found.add(compact)


def _children(value: Any) -> Iterable[tuple[str | None, Any]] | None:
    if isinstance(value, Mapping):
        return ((str(k), v) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return ((None, v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return ((f.name, getattr(value, f.name, None)) for f in dataclasses.fields(value))
    fields = getattr(type(value), "model_fields", None)  # pydantic v2: its fields, without dumping
    if isinstance(fields, Mapping):
        return ((name, getattr(value, name, None)) for name in fields)
    return None
