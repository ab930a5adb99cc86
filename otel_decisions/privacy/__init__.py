"""The privacy pipeline: the one path every captured value takes before it becomes an attribute.

Order: make JSON-able → key policy (deny-list or allow-list; masked values replaced by
:data:`~otel_decisions.semconv.REDACTION_SENTINEL` and their paths listed) → free-text
scrubbing (e-mail, SSN-like, phone, Luhn-valid card numbers, and any value masked
elsewhere in the same record) → truncation with a marker. Identifiers are pseudonymised
with HMAC-SHA256; the digest of the raw inputs is an HMAC of their canonical JSON. Spans that
are not decision records are scrubbed by :func:`scrub_span`.

Example::

    from otel_decisions.privacy import PrivacyPolicy

    policy = PrivacyPolicy.from_settings(DecisionSettings())
    record = policy.new_record()
    clean = record.clean_mapping({"ssn": "123-45-6789", "income": 52000}, "inputs")
    # clean == {"ssn": "[REDACTED]", "income": 52000}; record.redacted == ["inputs.ssn"]
"""

from otel_decisions.privacy._columns import ColumnMasker
from otel_decisions.privacy._keys import existing_hmac_key, key_id, resolve_hmac_key
from otel_decisions.privacy._policy import (
    FieldKind,
    PrivacyPolicy,
    PrivacyRecord,
    canonical_json,
    canonical_json_bytes,
    luhn_valid,
    to_jsonable,
    truncate,
    valid_text,
)
from otel_decisions.privacy._runs import RunValues, masked_parameter_values, run_values
from otel_decisions.privacy._spans import scrub_span

__all__ = [
    "ColumnMasker",
    "existing_hmac_key",
    "FieldKind",
    "PrivacyPolicy",
    "PrivacyRecord",
    "RunValues",
    "canonical_json",
    "canonical_json_bytes",
    "key_id",
    "luhn_valid",
    "masked_parameter_values",
    "resolve_hmac_key",
    "run_values",
    "scrub_span",
    "to_jsonable",
    "truncate",
    "valid_text",
]
