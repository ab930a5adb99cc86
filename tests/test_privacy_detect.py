"""Free-text identifier detection (``privacy._detect``): what it finds, with which label, and what it
must leave alone — the project's own non-personal values — in decisions and in run spans alike."""

from __future__ import annotations

import hashlib
import time
import uuid

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import Status, StatusCode

import otel_decisions
from otel_decisions import semconv
from otel_decisions.privacy import PrivacyPolicy, scrub_span
from otel_decisions.privacy._detect import find_identifiers, scrub_identifiers
from otel_decisions.settings import load_settings

from .conftest import TEST_HMAC_KEY

# Synthetic identifiers only: specimen/test ranges where they exist, valid checksums otherwise.
POSITIVES = [
    ("contact zed@example.net today", "contact [EMAIL] today"),
    ("SSN 912-45-6780 on file", "SSN [SSN] on file"),
    ("ssn: 912456780 on file", "ssn: [SSN] on file"),
    ("NI number QQ 12 34 56 C", "NI number [NINO]"),
    ("NINO AB123456C", "NINO [NINO]"),
    ("NHS 999 310 4426 and 9997654323", "NHS [NHS] and [NHS]"),
    ("SIN 130 692 544", "SIN [NATIONAL_ID]"),
    ("TFN 123 456 782", "TFN [NATIONAL_ID]"),
    ("Aadhaar 2345 6789 0124", "Aadhaar [NATIONAL_ID]"),
    ("IBAN GB82 WEST 1234 5698 7654 32", "IBAN [IBAN]"),
    ("IBAN DE89370400440532013000.", "IBAN [IBAN]."),
    ("card 4111 1111 1111 1111 declined", "card [CARD] declined"),
    ("from 203.0.113.77, via 2001:db8::7:77", "from [IP], via [IP]"),
    ("mapped ::ffff:198.51.100.23 seen", "mapped [IP] seen"),
    ("MAC 00:1A:2B:3C:4D:5E", "MAC [MAC]"),
    ("IMEI 490154203237518", "IMEI [IMEI]"),
    ("passport no. 925076473 scanned", "passport no. [PASSPORT] scanned"),
    ("call +1 555-010-4477 or (555) 014-2290", "call [PHONE] or [PHONE]"),
    ("tel +44 20 7946 0958", "tel [PHONE]"),
    ("tel +49 30 21069806", "tel [PHONE]"),
    ("card:4111111111111111", "card:[CARD]"),
    ("/cards/4111111111111111/charge", "/cards/[CARD]/charge"),
    ("4111111111111111-declined", "[CARD]-declined"),
]


@pytest.mark.parametrize(("text", "scrubbed"), POSITIVES)
def test_identifiers_in_free_text_are_masked_with_their_kind(text: str, scrubbed: str) -> None:
    assert scrub_identifiers(text) == scrubbed


def _negatives() -> list[str]:
    trace_id, span_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    return [
        str(uuid.UUID("6a0c2f0e-1c8b-4b1e-9d9e-3f5d2b7c4a10")),
        "01a2312a-4cd9-7f66-8a23-973890be5096",  # a Prefect (UUIDv7) task run id
        f"trace {trace_id} span {span_id}",
        "2026-12-01T10:54:56.651+00:00", "2026-12-01T10:54:56Z", "2026-12-01 10:54:56.651234", "2026-12-01",
        "ts 1796121017793477000", "at 1796121017793 ms", "epoch 1796121017",
        "$12,500.00", "EUR 1.234,56", "amount 12500.5", "52000", "GBP 2,000,000",
        "model 3.2.0", "credit-lr v1.4.0-rc1", "prefect 3.9.1", "2026.8.0", "python 3.11.15",
        hashlib.sha256(b"x").hexdigest(), hashlib.sha1(b"x").hexdigest(), f"sha256:{hashlib.sha256(b'y').hexdigest()}",
        "score-43d", "orchid-macaque", "decision credit.approval", "confidence 0.62 above 0.5",
        "http://127.0.0.1:4200/api", "0.0.0.0:8080", "[::1]:8123", "12:30:45",
        "retry 3 of 5 after 10 s", "42 % of 1,000 applicants", "batch 20261201-0001",
        "81e671a9-1234-5678-9012-68fa695856dd",  # a UUID whose digit groups pass an Aadhaar checksum
        "span 1234567890123456",  # a 16-hex id of digits only that is no card (no issuer prefix)
    ]


def test_the_projects_own_values_pass_through_unchanged() -> None:
    for text in _negatives():
        assert find_identifiers(text) == [], text
        assert scrub_identifiers(text) == text


def test_they_pass_unchanged_through_a_decision_and_a_run_span(captured) -> None:
    negatives = _negatives()
    otel_decisions.record_decision(type="t", outcome="approve", confidence=0.9, rationale=" | ".join(negatives),
                                   inputs={"values": negatives}, model_version="3.2.0")
    otel_decisions.force_flush()
    (span,) = [s for s in captured.get_finished_spans() if s.name.startswith(semconv.DECISION_SPAN_PREFIX)]
    assert span.attributes[semconv.DECISION_RATIONALE] == " | ".join(negatives)
    assert semconv.DECISION_REDACTED not in span.attributes

    policy = PrivacyPolicy.from_settings(load_settings(hmac_key=TEST_HMAC_KEY))
    run = ReadableSpan(
        name="score-43d", attributes={"prefect.run.id": negatives[1], "note": " ".join(negatives)},
        status=Status(StatusCode.ERROR, negatives[2]), start_time=time.time_ns(), end_time=time.time_ns(),
    )
    assert scrub_span(policy, run) is run  # nothing needed scrubbing


def test_run_span_masks_the_values_masked_for_its_run_in_every_form() -> None:
    policy = PrivacyPolicy.from_settings(load_settings(hmac_key=TEST_HMAC_KEY))
    from otel_decisions.privacy import masked_parameter_values

    values = masked_parameter_values(policy, {"applicant": {"last_name": "Quennell", "nino": "QQ 12 34 56 C",
                                                            "income": 52000}})
    assert values == {"Quennell", "QQ 12 34 56 C", "QQ123456C"}
    run = ReadableSpan(name="kyc-Quennell", attributes={"prefect.run.name": "kyc-Quennell"},
                       status=Status(StatusCode.ERROR, "no match for QQ123456C (Quennell), income 52000"),
                       start_time=time.time_ns(), end_time=time.time_ns())
    clean = scrub_span(policy, run, values)
    assert clean.name == "kyc-[REDACTED]" and clean.attributes["prefect.run.name"] == "kyc-[REDACTED]"
    assert clean.status.description == "no match for [REDACTED] ([REDACTED]), income 52000"


def _protected_provider():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_decisions.instrumentation._protect import protect_provider

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))  # the application's exporter, added first
    assert protect_provider(provider)
    return provider, memory


def test_a_run_span_named_like_a_decision_is_still_scrubbed(captured) -> None:
    """A Prefect task called "decision engine" makes run spans named "decision engine-..."."""
    provider, memory = _protected_provider()
    tracer = provider.get_tracer("prefect")
    run_id = "01a2312a-4cd9-7f66-8a23-973890be5096"
    span = tracer.start_span("decision engine-4111111111111111", attributes={
        "prefect.run.type": "task", "prefect.run.id": run_id, "note": "card 4111111111111111, a@example.com"})
    span.end()
    (exported,) = memory.get_finished_spans()
    assert exported.name == "decision engine-[CARD]"
    assert exported.attributes["note"] == "card [CARD], [EMAIL]"
    assert exported.attributes["prefect.run.id"] == run_id  # ids are never rewritten


def test_ids_are_not_rewritten_by_a_masked_value_they_contain(captured) -> None:
    from otel_decisions.privacy import run_values

    provider, memory = _protected_provider()
    run_id = "01a2312a-4cd9-7f66-8a23-973890be2000"
    run_values.add([run_id], ["2000", "Quennell"])  # e.g. a masked postcode "2000"
    span = provider.get_tracer("prefect").start_span("kyc-Quennell", attributes={
        "prefect.run.type": "task", "prefect.run.id": run_id, "prefect.flow_run.id": run_id})
    span.end()
    (exported,) = memory.get_finished_spans()
    assert exported.name == "kyc-[REDACTED]"
    assert exported.attributes["prefect.run.id"] == run_id and exported.attributes["prefect.flow_run.id"] == run_id


def test_a_run_whose_masked_values_did_not_all_fit_is_withheld_not_half_scrubbed(captured) -> None:
    from otel_decisions.privacy import RunValues
    from otel_decisions.privacy import _runs

    small = RunValues(max_runs=2, max_values=3)
    small.add(["run-a"], ["alpha-1", "bravo-2", "charlie-3", "delta-4"])
    assert small.incomplete("run-a") and not small.incomplete("run-b")
    small.add(["run-b"], ["echo-5"])
    small.add(["run-c"], ["golf-7"])  # the table is full: the oldest entry is forgotten, and marked
    assert small.incomplete("run-a") and small.get("run-c") == {"golf-7"}

    provider, memory = _protected_provider()
    original = _runs.run_values
    try:
        import otel_decisions.instrumentation._protect as protect

        protect.run_values = small
        span = provider.get_tracer("prefect").start_span("kyc-delta-4", attributes={
            "prefect.run.type": "task", "prefect.run.id": "run-a", "note": "delta-4 failed"})
        span.add_event("exception", {"exception.message": "delta-4"})
        span.end()
    finally:
        protect.run_values = original
    (exported,) = memory.get_finished_spans()
    assert exported.name == "[REDACTED]" and dict(exported.attributes) == {
        "prefect.run.type": "task", "prefect.run.id": "run-a"}
    assert not exported.events
