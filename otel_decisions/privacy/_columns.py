"""The masking path for a batch of rows of one layout: :class:`ColumnMasker`, column by column.

:meth:`PrivacyRecord.mask_fields` decides per key and per value; in a batch the keys are the same
for every row, so the key policy is applied once per column, and a text's free-text scrubbing
(the costly part) once per distinct value. :meth:`ColumnMasker.row` returns exactly what the per-call
path stores for a row's inputs and outcome (the inputs digest, the stored inputs JSON, the redacted
paths, the values masked), or ``None`` when the row needs the per-call path to be sure of that: a
value that is not a plain string, number, flag or null; a float JSON writes another way than
orjson; a value masked in the row found inside another of its texts (which the per-call path masks
there too). The batch engine records such rows through the per-call path.

Example::

    masker = ColumnMasker(policy, ["email", "income"], capture_inputs=True, constant_texts=["credit.approval"])
    digest, stored, redacted, masked, outcome, outcome_scrubbed = masker.row(("jo@example.org", 41000), "deny")
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from otel_decisions import semconv
from otel_decisions.privacy._detect import scrub_identifiers
from otel_decisions.privacy._policy import PrivacyPolicy, compact_form, truncate, valid_text

_SENTINEL = semconv.REDACTION_SENTINEL
_SORT = orjson.OPT_SORT_KEYS
_MIN_REMEMBERED = 4  # PrivacyRecord._MIN_REMEMBERED
_MAX_FLOAT = 1.7976931348623157e308
_SMALLEST_SAME = 1e-4
"""Below this magnitude (bar zero) Python's JSON writes a float in exponent form (``1e-05``) and orjson
does not (``0.00001``): such a row's digest is computed by the per-call path, from ``json.dumps``."""
_MEMO = 65_536
_NONE: Any = object()

RowMasking = tuple[str, str | None, list[str], list[str], str, bool]
"""(inputs digest, stored inputs JSON or None when inputs are not captured, redacted paths, values
masked, stored outcome, whether the outcome's scrubbing changed it)"""


class ColumnMasker:
    """The key policy of one batch layout's input columns, and memoised scrubbing of their texts."""

    def __init__(
        self, policy: PrivacyPolicy, names: Sequence[str], *, capture_inputs: bool, constant_texts: Iterable[str]
    ) -> None:
        self._policy = policy
        self._names = tuple(names)
        self._capture = capture_inputs
        plans = [policy.key_plan(name) if type(name) is str else ("", True, False) for name in self._names]
        # a key that is itself scrubbed, a repeated key or allow-list mode: the per-call path
        self.usable = (
            policy.mode == "denylist"
            and not any(changed for _stored, changed, _masked in plans)
            and len(set(self._names)) == len(self._names)
        )
        self._masked = [
            (j, f"inputs.{name}", name) for j, (name, (_, _, m)) in enumerate(zip(self._names, plans, strict=True)) if m
        ]
        self._plain = [
            (j, f"inputs.{name}", name)
            for j, (name, (_, _, m)) in enumerate(zip(self._names, plans, strict=True))
            if not m
        ]
        self._constant_text = "\x00".join(constant_texts)
        self._leaves: dict[str, tuple[str, bool]] = {}
        self._texts: dict[str, tuple[str, bool]] = {}
        self._compacts: dict[str, str | None] = {}

    def _leaf(self, value: str) -> tuple[str, bool]:
        """An input's string leaf scrubbed (no value masked in its row is in it)."""
        hit = self._leaves.get(value)
        if hit is None:
            scrubbed = scrub_identifiers(value) if self._policy.scrub_free_text else value
            hit = (scrubbed, scrubbed != value)
            if len(self._leaves) >= _MEMO:
                self._leaves.clear()
            self._leaves[value] = hit
        return hit

    def text(self, value: str) -> tuple[str, bool]:
        """A short text field (the outcome) as :meth:`PrivacyRecord.text_field` stores it, and whether
        scrubbing changed it (no value masked in its row is in it)."""
        hit = self._texts.get(value)
        if hit is None:
            scrubbed = scrub_identifiers(value) if self._policy.scrub_free_text else value
            hit = (valid_text(truncate(scrubbed, self._policy.max_value_length)), scrubbed != value)
            if len(self._texts) >= _MEMO:
                self._texts.clear()
            self._texts[value] = hit
        return hit

    def row(self, values: Sequence[Any], outcome: str) -> RowMasking | None:
        """The masking of one row whose input cells are *values* (in the layout's column order) and whose
        outcome is *outcome* (a ``str``); None when the row must take the per-call path."""
        for value in values:
            kind = type(value)
            if kind is float:
                if not (value == 0.0 or _SMALLEST_SAME <= abs(value) <= _MAX_FLOAT):  # NaN fails too
                    return None
            elif not (kind is str or kind is int or kind is bool or value is None):
                return None
        raw = dict(zip(self._names, values, strict=True))
        try:
            canonical = orjson.dumps(raw, option=_SORT)
        except orjson.JSONEncodeError:  # an int beyond 64 bits, a lone surrogate
            return None
        digest = self._policy.digest_bytes(canonical)
        redacted: list[str] = []
        secrets: list[str] = []
        cleaned = dict(raw) if self._masked else raw
        compacts = self._compacts
        for j, path, name in self._masked:
            value = values[j]
            cleaned[name] = _SENTINEL
            redacted.append(path)
            kind = type(value)
            if kind is str or kind is int:
                text = value if kind is str else str(value)
                if len(text) >= _MIN_REMEMBERED:
                    secrets.append(text)
                    compact = compacts.get(text, _NONE)
                    if compact is _NONE:
                        compact = compact_form(text)
                        if len(compacts) >= _MEMO:
                            compacts.clear()
                        compacts[text] = compact
                    if compact is not None:
                        secrets.append(compact)
        if secrets:
            for secret in secrets:
                if secret in outcome or secret in self._constant_text:
                    return None
        stored = None
        if self._capture:
            for j, path, name in self._plain:
                value = values[j]
                if type(value) is str and value != _SENTINEL:
                    for secret in secrets:
                        if secret in value:
                            return None
                    scrubbed, changed = self._leaf(value)
                    if changed:
                        cleaned[name] = scrubbed
                        redacted.append(path)
            stored = truncate(orjson.dumps(cleaned, option=_SORT).decode(), self._policy.max_json_length)
        outcome_stored, outcome_changed = self.text(outcome)
        return digest, stored, redacted, secrets, outcome_stored, outcome_changed
