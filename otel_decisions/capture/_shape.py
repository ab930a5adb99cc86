"""Shape detection for zero-code capture: is a task's return value a decision, and which fields.

Example::

    from otel_decisions.capture import decision_from_value

    d = decision_from_value({"decision": "approve", "confidence": 0.8}, inputs={}, defaults={"type": "t"},
                            outcome_fields=None, confidence_fields=None)
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from otel_decisions.capture._model import _DECISION_FIELDS, Decision
from otel_decisions.settings import DEFAULT_CONFIDENCE_FIELDS, DEFAULT_OUTCOME_FIELDS

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


def as_mapping(value: Any) -> Mapping[str, Any] | None:
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

    Raises ``DecisionValidationError`` (``.field`` names it) when the value is decision-shaped but a field is invalid.
    """
    if isinstance(value, Decision):
        given = {f: getattr(value, f) for f in _DECISION_FIELDS}
        if value.inputs is None:
            given["inputs"] = inputs
        for key, default in defaults.items():
            if given.get(key) in (None, (), "") and key != "type":
                given[key] = default
        return Decision(id=value.id, **given)
    if isinstance(value, str) and not require_confidence:
        return Decision(**{**defaults, "outcome": value, "inputs": inputs})
    mapping = as_mapping(value)
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
