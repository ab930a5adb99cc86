"""Values masked for a Prefect run, so its run spans (Prefect's own included) mask them too.

A value the policy masks in a task run's parameters or in a decision recorded there (a surname
under ``last_name``, a national insurance number under ``national_insurance_number``) can reappear
in that task run's span name (``task_run_name="kyc-{applicant[last_name]}"``), in
``prefect.run.name``, in state messages and in an exception's message and stack trace, and in the
same places of its flow run's span. :data:`run_values` remembers, per task run and flow run id,
the masked values; run-span scrubbing replaces each occurrence with the redaction sentinel. An
entry is dropped when its run's span has been scrubbed; the table is bounded.

Only values the key policy masks are remembered (free-text patterns are matched in the span text
itself), and only those long enough to be specific (4+ characters).

Example::

    from otel_decisions.privacy import masked_parameter_values, run_values

    run_values.add([task_run_id, flow_run_id], masked_parameter_values(policy, {"last_name": "Quennell"}))
    run_values.get(task_run_id)  # frozenset({'Quennell'})
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from otel_decisions.privacy._policy import PrivacyPolicy, compact_form

MIN_REMEMBERED = 4
"""Masked values shorter than this are not searched for elsewhere (too likely to be ordinary text)."""

_MAX_RUNS = 4096
_MAX_VALUES_PER_RUN = 512
_MAX_NODES = 2000
"""Parameters are walked at most this far (a big data frame is not templated into a run name)."""


class RunValues:
    """Masked values per run id (thread-safe, bounded: the oldest runs are forgotten first)."""

    def __init__(self, max_runs: int = _MAX_RUNS) -> None:
        self._values: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._max_runs = max_runs

    def add(self, run_ids: Iterable[str | None], values: Iterable[str]) -> None:
        """Remember *values* for every run in *run_ids* (``None`` ids are skipped)."""
        chosen = [v for v in values if len(v) >= MIN_REMEMBERED]
        if not chosen:
            return
        with self._lock:
            for run_id in run_ids:
                if not run_id:
                    continue
                known = self._values.get(run_id)
                if known is None:
                    if len(self._values) >= self._max_runs:
                        self._values.pop(next(iter(self._values)))
                    known = self._values[run_id] = set()
                room = _MAX_VALUES_PER_RUN - len(known)
                if room > 0:
                    known.update(chosen[:room])

    def get(self, run_id: str | None) -> frozenset[str]:
        if not run_id:
            return frozenset()
        with self._lock:
            known = self._values.get(run_id)
            return frozenset(known) if known else frozenset()

    def discard(self, run_id: str | None) -> None:
        if run_id:
            with self._lock:
                self._values.pop(run_id, None)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


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
        if masked and isinstance(value, (str, int)) and not isinstance(value, bool):
            _found(found, str(value))  # a str/int subclass (an enum member, say)
        return
    for key, item in items:
        _walk(policy, item, masked or (key is not None and policy.is_masked_key(key)), found, budget, depth + 1)


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
