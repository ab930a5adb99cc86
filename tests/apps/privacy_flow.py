"""Personal data in the shapes real flows carry it, for tests/test_privacy_matrix.py. Synthetic people only.

``python privacy_flow.py MODE OUT`` sets the tracer provider up one way, runs the flow, and writes
every span an *application* processor saw (added to the provider after otel-decisions) to OUT as
the encoded OTLP payload (``OUT``) and as JSON (``OUT.json``):

- ``configure``: ``otel_decisions.configure(exporters=["clickhouse"])`` + ``instrument()``;
- ``own-provider``: the application's own global ``TracerProvider`` with its own exporters
  (otel-decisions' ClickHouse exporter among them), ``instrument(tracer_provider=provider)``,
  and no ``configure()``;
- ``auto``: run under ``opentelemetry-instrument`` (the configurator sets everything up).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prefect import flow, task
from pydantic import BaseModel

# Synthetic: HMRC's example NINO prefix QQ, the NHS test number range 999, documentation IP ranges
# (RFC 5737 / RFC 3849), the IBAN standard's example, an unissued 9xx SSN, example.com addresses.
PEOPLE = [
    {
        "applicant_id": "APP-77120",
        "first_name": "Marisol",
        "last_name": "Quennell",
        "national_insurance_number": "QQ 12 34 56 C",
        "nhs_number": "999 310 4426",
        "client_ip": "203.0.113.77",
        "device": {"ipv6": "2001:db8::7:77", "imei": "490154203237518"},
        "passport_number": "925076473",
        "iban": "GB82 WEST 1234 5698 7654 32",
        "contacts": [{"email": "marisol.q@example.com", "phone": "+44 20 7946 0958"}],
        "ssn": "912-45-6789",
        "dob": "1984-03-09",
        "income": 52000,
    },
    {
        "applicant_id": "APP-77121",
        "first_name": "Teodor",
        "last_name": "Vasquell",
        "national_insurance_number": "QQ 65 43 21 A",
        "nhs_number": "999 765 4323",
        "client_ip": "198.51.100.23",
        "device": {"ipv6": "2001:db8:0:0:1::23", "imei": "356938035643809"},
        "passport_number": "512380946",
        "iban": "DE89 3704 0044 0532 0130 00",
        "contacts": [{"email": "t.vasquell@example.org", "phone": "(555) 014-2290"}],
        "ssn": "987-65-4321",
        "dob": "1990-11-30",
        "income": 61000,
    },
]
IDENTIFIERS = [
    "Marisol", "Quennell", "QQ 12 34 56 C", "QQ123456C", "999 310 4426", "9993104426", "203.0.113.77",
    "2001:db8::7:77", "490154203237518", "925076473", "GB82 WEST 1234 5698 7654 32", "GB82WEST12345698765432",
    "marisol.q@example.com", "+44 20 7946 0958", "912-45-6789", "1984-03-09",
    "Teodor", "Vasquell", "QQ 65 43 21 A", "QQ654321A", "999 765 4323", "9997654323", "198.51.100.23",
    "2001:db8:0:0:1::23", "356938035643809", "512380946", "DE89 3704 0044 0532 0130 00", "DE89370400440532013000",
    "t.vasquell@example.org", "(555) 014-2290", "987-65-4321", "1990-11-30",
]
"""Every identifier of the fixture people, in the forms they appear in the flow's text."""


class KycResult(BaseModel):
    decision: str
    confidence: float
    rationale: str
    client_ip: str


@dataclasses.dataclass
class ScreenResult:
    outcome: str
    score: float
    note: str


def _compact(value: str) -> str:
    return value.replace(" ", "")


@task(task_run_name="kyc-{applicant[last_name]}")
def kyc(applicant: dict) -> KycResult:  # a pydantic return, captured with no code
    return KycResult(
        decision="refer",
        confidence=0.62,
        rationale=f"{applicant['first_name']} {applicant['last_name']} ({_compact(applicant['national_insurance_number'])}) "
        f"signed in from {applicant['client_ip']} and {applicant['device']['ipv6']}",
        client_ip=applicant["client_ip"],
    )


@task(task_run_name="screen-{person[first_name]}")
def screen(person: dict) -> ScreenResult:  # a dataclass return
    return ScreenResult(
        outcome="clear",
        score=0.91,
        note=f"IBAN {_compact(person['iban'])}, NHS {_compact(person['nhs_number'])}, "
        f"mail {person['contacts'][0]['email']}",
    )


@task(retries=1, retry_delay_seconds=0, task_run_name="verify-{applicant[last_name]}")
def verify(applicant: dict) -> dict:  # fails twice with personal data in the message
    raise ValueError(
        f"KYC failed for {applicant['first_name']} {applicant['last_name']}: NINO "
        f"{applicant['national_insurance_number']} from {applicant['client_ip']}, passport "
        f"{applicant['passport_number']}, phone {applicant['contacts'][0]['phone']}, born {applicant['dob']}"
    )


@task
def explicit(applicant: dict) -> str:  # record_decision with nested inputs, where the app chose to call it
    import otel_decisions

    decided = otel_decisions.record_decision(
        type="kyc.manual", outcome="approve", confidence=0.8, inputs={"case": {"applicants": [applicant]}},
        subject_id=applicant["applicant_id"],
        rationale=f"called {applicant['contacts'][0]['phone']}; SSN {applicant['ssn']} matched, "
        f"device {applicant['device']['imei']}",
    )
    otel_decisions.record_review(  # a review span, linked to the decision
        decided, reviewer="analyst-07", action="override", new_outcome="refer",
        reason=f"{applicant['first_name']} {applicant['last_name']} disputed the match from {applicant['client_ip']}",
    )
    return "recorded"


_RECORDS = {person["applicant_id"]: person for person in PEOPLE}


@task
def lookup(applicant_id: str) -> dict:  # identifiers only in free text: nothing under a key says what they are
    found = _RECORDS[applicant_id]
    return {
        "decision": "match",
        "confidence": 0.97,
        "rationale": f"bureau file: NI {found['national_insurance_number']}, NHS {found['nhs_number']}, "
        f"IBAN {found['iban']}, seen at {found['client_ip']} / {found['device']['ipv6']}, "
        f"SSN {found['ssn']}, contact {found['contacts'][0]['email']}",
    }


@flow(flow_run_name="onboard-{case[last_name]}")
def onboard(case: dict) -> list[str]:
    assert lookup(case["applicant_id"])["decision"] == "match"
    out = [kyc(case).decision, screen(case).outcome]
    state = verify(case, return_state=True)
    out.append("failed" if state.is_failed() else "?")
    out.append(explicit(case))
    return out


def main() -> None:
    mode, out = sys.argv[1], Path(sys.argv[2])
    import otel_decisions

    if mode == "configure":
        otel_decisions.configure(exporters=["clickhouse"])
        otel_decisions.PrefectInstrumentor().instrument()
        provider = trace.get_tracer_provider()
    elif mode == "own-provider":
        from otel_decisions.store.exporter import ClickHouseSpanExporter

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(ClickHouseSpanExporter()))
        trace.set_tracer_provider(provider)
        otel_decisions.PrefectInstrumentor().instrument(tracer_provider=provider)
    else:  # auto: opentelemetry-instrument configured the global provider already
        provider = trace.get_tracer_provider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))  # type: ignore[attr-defined]  # the application's own
    results = [onboard(person) for person in PEOPLE]
    assert results == [["refer", "clear", "failed", "recorded"]] * 2, results
    otel_decisions.force_flush()
    provider.force_flush()  # type: ignore[attr-defined]
    spans = memory.get_finished_spans()
    out.write_bytes(encode_spans(spans).SerializeToString())
    out.with_suffix(".json").write_text(json.dumps([json.loads(s.to_json()) for s in spans]))
    print("SPANS", len(spans))


if __name__ == "__main__":
    main()
