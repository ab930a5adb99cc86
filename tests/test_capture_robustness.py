"""Instrumentation never changes a task's result or exception; bad input gets a clear error; privacy holds."""

from __future__ import annotations

import json
import logging
import math

import pytest
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prefect import flow, task

import otel_decisions
from otel_decisions import semconv
from otel_decisions.settings import load_settings
from otel_decisions.privacy import luhn_valid

from .conftest import TEST_HMAC_KEY

pytestmark = pytest.mark.usefixtures("captured")


def decisions(memory):
    otel_decisions.force_flush()
    return [s for s in memory.get_finished_spans() if s.name.startswith(semconv.DECISION_SPAN_PREFIX)]


class ExplodingExporter(SpanExporter):
    def __init__(self) -> None:
        self.calls = 0

    def export(self, spans):
        self.calls += 1
        raise RuntimeError("collector on fire")

    def shutdown(self):
        pass


class Unserialisable:
    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")


@task
def decide(x) -> dict:
    return {"decision": "approve", "confidence": 0.7, "x_echo": str(type(x).__name__)}


@task
def decide_then_raise(x: int) -> dict:
    otel_decisions.record_decision(type="pre", outcome="hold", confidence=0.5, inputs={"x": x})
    raise KeyError("missing feature 'income'")


def _run_both(make_flow):
    """Result (or exception) of a flow uninstrumented and instrumented."""
    outcomes = []
    instrumentor = otel_decisions.PrefectInstrumentor()
    for instrumented in (False, True):
        if instrumented:
            instrumentor.instrument()
        else:
            instrumentor.uninstrument()
        try:
            outcomes.append(("ok", make_flow()()))
        except BaseException as exc:  # noqa: BLE001
            outcomes.append(("raised", type(exc), str(exc)))
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
    return outcomes


def test_exporter_that_raises_does_not_change_result(tmp_path, caplog):
    exploding = ExplodingExporter()
    memory = InMemorySpanExporter()
    otel_decisions.configure(exporters=["none"], span_exporters=[exploding, memory], durable=False,
                             data_dir=str(tmp_path), hmac_key=TEST_HMAC_KEY)

    def make():
        @flow
        def f():
            return decide(3)
        return f

    plain, instrumented = _run_both(make)
    assert plain == instrumented == ("ok", {"decision": "approve", "confidence": 0.7, "x_echo": "int"})
    otel_decisions.force_flush()
    assert exploding.calls >= 1
    assert len(decisions(memory)) == 1  # the other exporter still got it


def test_unserialisable_inputs_are_recorded_not_dropped(captured):
    weird = {"obj": Unserialisable(), "nan": math.nan, "bytes": b"\x00\x01", "set": {3, 1}}

    def make():
        @flow
        def f():
            return decide(weird)
        return f

    plain, instrumented = _run_both(make)
    assert plain == instrumented == ("ok", {"decision": "approve", "confidence": 0.7, "x_echo": "dict"})
    (dec,) = decisions(captured)
    inputs = json.loads(dec.attributes[semconv.DECISION_INPUTS])["x"]
    assert inputs["obj"].startswith(semconv.UNSERIALISABLE_PREFIX + "Unserialisable")
    assert inputs["nan"] == "nan" and inputs["bytes"] == "base64:AAE=" and inputs["set"] == [1, 3]


def test_task_exception_unchanged_and_earlier_decision_kept(captured):
    def make():
        @flow
        def f():
            return decide_then_raise(5)
        return f

    plain, instrumented = _run_both(make)
    assert plain == instrumented
    assert plain[0] == "raised" and plain[1] is KeyError
    # the decision recorded before the exception is kept (uninstrumented run also recorded it: explicit API)
    assert {d.attributes[semconv.DECISION_OUTCOME] for d in decisions(captured)} == {"hold"}


def test_malformed_privacy_policy_in_environment_logged_once_task_unchanged(monkeypatch, caplog):
    import importlib

    configure_module = importlib.import_module("otel_decisions._runtime")

    monkeypatch.setenv("OTEL_DECISIONS_PRIVACY_DENY_PATTERNS", "ssn,(unclosed")
    monkeypatch.setattr(configure_module, "_runtime", None)  # as in a process that never called configure()

    def make():
        @flow
        def f():
            return [decide(1), decide(2)]
        return f

    with caplog.at_level(logging.WARNING, logger="otel_decisions"):
        plain, instrumented = _run_both(make)
    assert plain == instrumented and plain[0] == "ok"
    messages = [r.getMessage() for r in caplog.records if "privacy_deny_patterns" in r.getMessage()]
    assert len(messages) == 1, messages  # logged once, clearly, naming the setting
    assert "(unclosed" in messages[0]


def test_auto_capture_invalid_confidence_is_logged_and_recorded_without_it(captured, caplog):
    @task
    def overconfident() -> dict:
        return {"decision": "approve", "confidence": 1.7}

    @flow
    def f():
        return overconfident()

    with caplog.at_level(logging.WARNING, logger="otel_decisions"):
        assert f() == {"decision": "approve", "confidence": 1.7}
    (dec,) = decisions(captured)
    assert semconv.DECISION_CONFIDENCE not in dec.attributes
    assert json.loads(dec.attributes[semconv.DECISION_OUTPUT])["confidence"] == 1.7
    assert any("confidence" in r.getMessage() and "overconfident" in r.getMessage() for r in caplog.records)


# --- clear errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"confidence": math.nan}, "confidence"),
        ({"confidence": 1.01}, "confidence"),
        ({"confidence": -0.1}, "confidence"),
        ({"confidence": "high"}, "confidence"),
        ({"outcome": ""}, "outcome"),
        ({"outcome": "   "}, "outcome"),
        ({"outcome": None}, "outcome"),
        ({"type": ""}, "type"),
        ({"automation": "robot"}, "automation"),
        ({"score": math.inf}, "score"),
        ({"reasons": 3}, "reasons"),
    ],
)
def test_bad_decision_fields_raise_value_error_naming_the_field(captured, fields, field):
    base = {"type": "credit.approval", "outcome": "approve", "confidence": 0.5}
    with pytest.raises(ValueError, match=f"^{field}:"):
        otel_decisions.record_decision(**{**base, **fields})
    assert decisions(captured) == []


def test_unknown_fields_and_settings_are_named():
    with pytest.raises(ValueError, match="unknown decision field.*confidance"):
        otel_decisions.record_decision(type="t", outcome="o", confidance=0.4)
    with pytest.raises(ValueError, match="privacy_mode"):
        load_settings(privacy_mode="blocklist")
    with pytest.raises(ValueError, match="exporters"):
        load_settings(exporters=["kafka"])
    with pytest.raises(ValueError, match="unknown setting.*sample_rate"):
        load_settings(sample_rate=0.5)
    with pytest.raises(ValueError, match="dsn"):
        load_settings(dsn="postgres://x")
    with pytest.raises(ValueError, match="privacy_allow_patterns"):
        load_settings(privacy_mode="allowlist")


def test_bad_environment_value_is_named(monkeypatch):
    monkeypatch.setenv("OTEL_DECISIONS_COMMIT_INTERVAL_MS", "-5")
    with pytest.raises(ValueError, match="commit_interval_ms"):
        load_settings()


# --- sizes and encodings ---------------------------------------------------------------------------
def test_unicode_nested_and_one_megabyte_inputs(captured):
    big = "ü" * 1_000_000
    nested = {"level1": {"level2": {"level3": [{"name_of_model": "模型", "emoji": "✅"}]}}}
    d = otel_decisions.record_decision(type="größe", outcome="genehmigt ✅", confidence=0.5,
                                       inputs={"blob": big, "nested": nested}, rationale="Begründung: 信用良好")
    (span,) = decisions(captured)
    a = span.attributes
    assert span.name == "decision größe" and a[semconv.DECISION_OUTCOME] == "genehmigt ✅"
    assert a[semconv.DECISION_RATIONALE] == "Begründung: 信用良好"
    inputs_text = a[semconv.DECISION_INPUTS]
    settings = load_settings(hmac_key=TEST_HMAC_KEY)
    assert len(inputs_text) <= settings.max_json_length and "truncated" in inputs_text
    # the digest covers the whole raw input, not the truncated form
    from otel_decisions.privacy import PrivacyPolicy

    policy = PrivacyPolicy.from_settings(settings)
    assert a[semconv.DECISION_INPUTS_DIGEST] == policy.digest({"blob": big, "nested": nested})
    assert a[semconv.DECISION_INPUTS_DIGEST] != policy.digest({"blob": big[:-1], "nested": nested})
    small = otel_decisions.record_decision(type="n", outcome="o", inputs={"nested": nested})
    assert small.id != d.id
    (_, span2) = sorted(decisions(captured), key=lambda s: s.start_time)
    assert json.loads(span2.attributes[semconv.DECISION_INPUTS]) == {"nested": nested}


def test_text_that_is_not_valid_unicode_and_huge_integers_are_recorded(captured):
    # Lone surrogates come from bytes decoded with errors="surrogateescape" (legacy files, env vars):
    # OTLP and ClickHouse need valid UTF-8, so stored text carries U+FFFD; the digest covers the raw value.
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from otel_decisions.privacy import PrivacyPolicy

    raw = {"note": "caf\udce9 au lait", "count": 2**70, "ratio": 1e-7}
    otel_decisions.record_decision(type="t", outcome="o\ud800k", inputs=raw, rationale="bad \udcff byte",
                                   reasons=["r\ud800"], subject_id="subject-\udce9")
    (span,) = decisions(captured)
    a = span.attributes
    assert json.loads(a[semconv.DECISION_INPUTS]) == {"note": "caf\ufffd au lait", "count": 2**70, "ratio": 1e-7}
    assert a[semconv.DECISION_OUTCOME] == "o\ufffdk" and a[semconv.DECISION_RATIONALE] == "bad \ufffd byte"
    assert a[semconv.DECISION_REASONS] == ("r\ufffd",)
    assert encode_spans([span]).SerializeToString()  # an OTLP exporter can send it
    policy = PrivacyPolicy.from_settings(load_settings(hmac_key=TEST_HMAC_KEY))
    assert a[semconv.DECISION_INPUTS_DIGEST] == policy.digest(raw)
    assert a[semconv.DECISION_INPUTS_DIGEST] != policy.digest({**raw, "note": "caf\udcea au lait"})
    assert a[semconv.DECISION_SUBJECT_ID] == policy.pseudonymise("subject-\udce9") != policy.pseudonymise("subject-\udcea")


def test_run_spans_with_undecodable_text_stay_exportable(captured):
    # One such span in an OTLP batch would make the whole batch, decisions included, unencodable.
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    @task
    def fails(x: str) -> None:
        otel_decisions.record_decision(type="t", outcome="o", inputs={"x": x})
        raise ValueError(f"bad {x} value")

    @flow
    def run() -> str:
        try:
            fails("caf\udce9")
        except ValueError as exc:
            return str(exc)
        return "no exception"

    assert run() == "bad caf\udce9 value"  # the task's exception is untouched
    otel_decisions.force_flush()
    spans = captured.get_finished_spans()
    assert encode_spans(spans).SerializeToString()
    texts = [e.attributes.get("exception.message") for s in spans for e in s.events if e.name == "exception"]
    assert "bad caf\ufffd value" in texts


def test_canonical_json_is_the_documented_form():
    from otel_decisions.privacy import canonical_json

    value = {"b": [1e-7, 1.5, 2**70], "a": {"z": True, "é": None, "e": "ü\n"}}
    # the standard library's form, so anyone can recompute a digest without otel-decisions
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(value) == expected == '{"a":{"e":"ü\\n","z":true,"é":null},"b":[1e-07,1.5,1180591620717411303424]}'
    for small in ({"b": 1e-7, "a": 1}, {"x": [3e-5, 1e22, -0.0, 0.1]}, {"k": "re-1e-5 text"}, {"😀": 1, "\uffff": 2}):
        assert canonical_json(small) == json.dumps(small, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_capture_inputs_off_keeps_only_the_digest(tmp_path):
    memory = InMemorySpanExporter()
    otel_decisions.configure(exporters=["none"], span_exporters=[memory], durable=False, data_dir=str(tmp_path),
                             hmac_key=TEST_HMAC_KEY, capture_inputs=False)
    otel_decisions.record_decision(type="t", outcome="o", inputs={"income": 1, "email": "jo@example.org"},
                                   rationale="mailed jo@example.org")
    (span,) = decisions(memory)
    assert semconv.DECISION_INPUTS not in span.attributes
    assert len(span.attributes[semconv.DECISION_INPUTS_DIGEST]) == 64
    assert "jo@example.org" not in span.attributes[semconv.DECISION_RATIONALE]


# --- privacy matrix -----------------------------------------------------------------------------------
SYNTHETIC_PEOPLE = [
    # Synthetic: SSNs in the 9xx range are never issued; 555-01xx phone numbers are fictional; test card numbers.
    {"first_name": "Marisol", "last_name": "Quennell", "ssn": "912-45-6789", "email": "marisol.quennell@example.com",
     "phone": "+1 555-010-4477", "card_number": "4111 1111 1111 1111", "dob": "1984-03-09",
     "address": "12 Tamarind Lane", "account_number": "000123456789", "mrn": "MRN-5567123"},
    {"first_name": "Teodor", "last_name": "Vasquell", "ssn": "987-65-4321", "email": "t.vasquell@example.org",
     "phone": "(555) 014-2290", "card_number": "5500 0000 0000 0004", "dob": "1990-11-30",
     "address": "77 Orchard Row", "account_number": "000987654321", "mrn": "MRN-8812340"},
]
SECRET_FIELDS = ["first_name", "last_name", "ssn", "email", "phone", "card_number", "dob", "address", "account_number", "mrn"]


def test_privacy_matrix_no_identifier_appears_in_any_exported_span(captured):
    @task
    def assess(person: dict, notes: str) -> dict:
        otel_decisions.record_decision(
            type="kyc.check", outcome="refer", confidence=0.41, inputs=person, subject_id=person["ssn"],
            rationale=f"{person['first_name']} {person['last_name']} gave {person['email']} and {person['phone']}; "
                      f"card {person['card_number']}, ssn {person['ssn']}",
            reasons=[f"address {person['address']} unverified", f"call {person['phone']}"],
        )
        return "recorded"

    @task
    def auto_assess(person: dict, notes: str) -> dict:  # zero-code capture of the same data
        return {"decision": "refer", "confidence": 0.41, "contact": person["email"], "note": notes}

    @flow
    def kyc():
        for person in SYNTHETIC_PEOPLE:
            notes = f"spoke to {person['first_name']} on {person['phone']} ({person['email']})"
            assert assess(person, notes=notes) == "recorded"
            assert auto_assess(person, notes=notes)["decision"] == "refer"

    kyc()
    otel_decisions.force_flush()
    spans = captured.get_finished_spans()
    assert len([s for s in spans if s.name.startswith(semconv.DECISION_SPAN_PREFIX)]) == 4
    dump = "\n".join(s.to_json() for s in spans)
    for person in SYNTHETIC_PEOPLE:
        for field in SECRET_FIELDS:
            value = person[field]
            assert value not in dump, f"{field} leaked in clear"
        digits_only = person["card_number"].replace(" ", "")
        assert luhn_valid(digits_only) and digits_only not in dump
    assert semconv.REDACTION_SENTINEL in dump


@pytest.mark.parametrize(
    ("key", "masked"),
    [("tin", True), ("customer_tin", True), ("tin_number", True), ("passport_no", True), ("nin", True),
     ("driver_license_number", True), ("passportNumber", True), ("tinNumber", True), ("first_name", True), ("email", True), ("card_number", True),
     ("national_insurance_number", True), ("nationalInsuranceNumber", True), ("nino", True), ("nhs_number", True),
     ("sin", True), ("social_insurance_number", True), ("tfn", True), ("tax_file_number", True), ("medicare_no", True),
     ("aadhaar", True), ("aadhaar_number", True), ("pan_number", True), ("voter_id", True), ("driving_licence_no", True),
     ("licence_number", True), ("iban", True), ("bank_account", True), ("bsb", True), ("ifsc_code", True),
     ("client_ip", True), ("clientIp", True), ("ip", True), ("ipv6_address", True), ("remote_addr", True),
     ("x_forwarded_for", True), ("device_id", True), ("imei", True), ("mac_address", True), ("advertising_id", True),
     ("codice_fiscale", True), ("steuer_id", True), ("pesel", True), ("health_card", True), ("id_number", True),
     ("tiny_loan", False), ("ninety_day_arrears", False), ("timing", False), ("destination", False),
     ("income", False), ("model_name", False), ("utilisation", False), ("single_parent", False), ("sine_wave", False), ("sin_wave", False), ("nir_band", False), ("dni_flag", False),
     ("sin_no", True), ("utr_number", True), ("bsn", True),
     ("pandemic_flag", False), ("zipfian_rank", False), ("recipe_id", False), ("trip_count", False),
     ("shipping_method", False), ("nirvana_score", False), ("tax_rate", False), ("taxable_income", False),
     ("membership_years", False), ("device_type", False), ("model_version", False), ("decision_id", False)],
)
def test_default_deny_list_masks_identifiers_not_lookalike_words(key, masked):
    from otel_decisions.privacy import PrivacyPolicy

    policy = PrivacyPolicy.from_settings(load_settings(hmac_key=TEST_HMAC_KEY))
    assert policy.is_masked_key(key) is masked


def test_luhn():
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")


def test_free_text_scrubbing_without_any_input_hint(captured):
    otel_decisions.record_decision(
        type="t", outcome="deny", confidence=0.9,
        rationale="contact zed@example.net, SSN 912-45-6780, tel +44 20 7946 0958, card 4242 4242 4242 4242; order 1234567812345678",
    )
    (span,) = decisions(captured)
    text = span.attributes[semconv.DECISION_RATIONALE]
    assert text == "contact [EMAIL], SSN [SSN], tel [PHONE], card [CARD]; order 1234567812345678"
    assert list(span.attributes[semconv.DECISION_REDACTED]) == ["rationale"]


def test_enum_members_are_recorded_as_their_values(captured):
    d = otel_decisions.record_decision(type="t", outcome="refer", automation=otel_decisions.Automation.HUMAN_IN_LOOP)
    assert d.automation == "human_in_loop" and type(d.automation) is str
    (span,) = decisions(captured)
    assert span.attributes[semconv.DECISION_AUTOMATION] == "human_in_loop"
    assert type(span.attributes[semconv.DECISION_AUTOMATION]) is str


def test_no_field_is_exempt_from_the_privacy_pipeline(captured):
    person = {"full_name": "Oriane Velasquette", "income": 1}
    d = otel_decisions.record_decision(
        type="kyc", outcome="refer Oriane Velasquette", options=["approve", "ask Oriane Velasquette"],
        policy_version="policy for oriane.v@example.com", model_name="m 912-45-6789", confidence=0.5,
        inputs={**person, "scores": {"oriane.v@example.com": 3, "4111 1111 1111 1111": 2}},
    )
    otel_decisions.record_review(d, reviewer="r1", action="override", new_outcome="call +1 555-010-4477",
                                 reason="spoke to oriane.v@example.com")
    otel_decisions.force_flush()
    dump = "\n".join(s.to_json() for s in captured.get_finished_spans())
    for secret in ("Oriane Velasquette", "oriane.v@example.com", "912-45-6789", "4111 1111 1111 1111", "555-010-4477"):
        assert secret not in dump, secret
    (span,) = decisions(captured)
    assert span.attributes[semconv.DECISION_OUTCOME] == "refer [REDACTED]"
    assert json.loads(span.attributes[semconv.DECISION_INPUTS])["scores"] == {"[EMAIL]": 3, "[CARD]": 2}


def test_allowlist_mode_hides_values_that_have_no_key(tmp_path):
    memory = InMemorySpanExporter()
    otel_decisions.configure(exporters=["none"], span_exporters=[memory], durable=False, data_dir=str(tmp_path),
                             hmac_key=TEST_HMAC_KEY, privacy_mode="allowlist", privacy_allow_patterns=["^income$"])
    otel_decisions.record_decision(type="t", outcome="o", inputs="Patient Jane Roe, MRN 99812, HIV positive")
    otel_decisions.record_decision(type="t", outcome="o", inputs={"income": 5, "diagnosis": "HIV positive"})
    bare, keyed = sorted(decisions(memory), key=lambda s: s.start_time)
    assert json.loads(bare.attributes[semconv.DECISION_INPUTS]) == semconv.REDACTION_SENTINEL
    assert json.loads(keyed.attributes[semconv.DECISION_INPUTS]) == {"diagnosis": semconv.REDACTION_SENTINEL, "income": 5}
    assert "HIV" not in bare.to_json() + keyed.to_json()


@pytest.mark.parametrize("telemetry", [True, False], ids=["prefect-spans", "instrumentor-spans"])
def test_exception_messages_and_run_names_of_run_spans_are_scrubbed(captured, telemetry):
    from prefect.settings import temporary_settings

    @task(task_run_name="score-{email}")
    def fragile(email: str) -> dict:
        raise ValueError(f"bad SSN 912-45-6781 for {email}")

    @flow
    def leaky():
        state = fragile("zoe.q@example.org", return_state=True)
        return state.is_failed(), state.result(raise_on_failure=False)

    with temporary_settings(updates={"cloud.enable_orchestration_telemetry": telemetry}):
        failed, exc = leaky()
    assert failed and isinstance(exc, ValueError)
    assert str(exc) == "bad SSN 912-45-6781 for zoe.q@example.org"  # the task's own exception is untouched
    otel_decisions.force_flush()
    spans = captured.get_finished_spans()
    task_spans = [s for s in spans if (s.attributes or {}).get("prefect.run.type") == "task"]
    assert task_spans and any(e.name == "exception" for s in task_spans for e in s.events)
    dump = "\n".join(s.to_json() for s in spans)
    assert "912-45-6781" not in dump and "zoe.q@example.org" not in dump
    # the e-mail is the value of a deny-listed parameter: masked as that value, before any pattern
    assert "[SSN]" in dump and "score-[REDACTED]" in dump and "for [REDACTED]" in dump


def test_enum_review_outcomes_are_stored_as_their_values(captured):
    import enum

    class Outcome(str, enum.Enum):
        APPROVE = "approve"

    d = otel_decisions.record_decision(type="t", outcome=Outcome.APPROVE)
    otel_decisions.record_review(d, reviewer="r", action=otel_decisions.ReviewAction.OVERRIDE, new_outcome=Outcome.APPROVE)
    otel_decisions.force_flush()
    (review,) = [s for s in captured.get_finished_spans() if s.name == semconv.REVIEW_SPAN_NAME]
    value = review.attributes[semconv.DECISION_REVIEW_NEW_OUTCOME]
    assert value == "approve" and type(value) is str


def test_run_span_ids_and_names_survive_scrubbing(captured):
    """Only identifiers are scrubbed from run spans: Prefect's ids (UUIDs) and names stay intact."""
    @task
    def plain_step(x: int) -> int:
        return x

    @flow
    def ids_flow():
        return plain_step(1)

    ids_flow()
    otel_decisions.force_flush()
    run_spans = [s for s in captured.get_finished_spans() if "prefect.run.id" in (s.attributes or {})]
    assert run_spans
    import uuid

    for span in run_spans:
        uuid.UUID(span.attributes["prefect.run.id"])  # not '...-[PHONE]-...'
        assert "[REDACTED]" not in span.to_json()


def test_scrub_span_keeps_uuids_and_namespaced_names_but_masks_identifiers():
    from opentelemetry.sdk.trace import ReadableSpan

    from otel_decisions.privacy import PrivacyPolicy, scrub_span

    policy = PrivacyPolicy.from_settings(load_settings(hmac_key=TEST_HMAC_KEY))
    span = ReadableSpan(name="score-f836cddf", attributes={
        "prefect.run.id": "f836cddf-0591-4704-9885-4d80b72cb910",  # a UUID that once looked like a phone number
        "prefect.flow.name": "credit-decisioning",
        "user.email": "kim@example.com",
        "note": "call +1 555-010-4477",
    })
    clean = scrub_span(policy, span)
    assert clean.attributes["prefect.run.id"] == "f836cddf-0591-4704-9885-4d80b72cb910"
    assert clean.attributes["prefect.flow.name"] == "credit-decisioning"
    assert clean.attributes["user.email"] == semconv.REDACTION_SENTINEL
    assert clean.attributes["note"] == "call [PHONE]"
