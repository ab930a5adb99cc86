"""The example flows, run on real Prefect with the real instrumentor, checked on the recorded spans.

Each example runs in-process at a small size through the ``captured`` fixture (in-memory exporter,
test HMAC key), and the assertions are on actual decision / review span attributes: principal
reasons, pseudonymised subjects, masked identity fields, reviews and overrides, and zero-code
capture of a flow that never imports otel_decisions.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("sklearn", reason="the examples need scikit-learn (pip install 'otel-decisions[examples]')")

import otel_decisions  # noqa: E402
from otel_decisions import semconv  # noqa: E402
from tests.conftest import TEST_HMAC_KEY  # noqa: E402

from examples import clinical_triage, credit_decisioning, existing_flow  # noqa: E402

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"


def spans_of(memory):
    otel_decisions.force_flush()
    return list(memory.get_finished_spans())


def pseudonym(identifier: str) -> str:
    return hmac.new(TEST_HMAC_KEY.encode(), identifier.encode(), hashlib.sha256).hexdigest()


def all_attribute_text(spans) -> str:
    return "\n".join(repr(dict(s.attributes or {})) for s in spans)


# --- credit decisioning ------------------------------------------------------------------------
def test_credit_decisions_reasons_privacy_and_challenger(captured):
    n, seed = 150, 11
    counts = credit_decisioning.run(n=n, seed=seed)
    spans = spans_of(captured)
    decisions = [s for s in spans if s.name == f"decision {credit_decisioning.DECISION_TYPE}"]
    by_id = {s.attributes[semconv.DECISION_ID]: s for s in decisions}
    assert len(by_id) == n == counts["decisions"]
    # The first batch's notice step failed once: Prefect retried and the same ids were recorded again.
    assert len(decisions) == n + credit_decisioning.BATCH_SIZE

    applicants = {a["applicant_id"]: a for a in credit_decisioning.generate_applicants(n, seed)}
    expected_subjects = {pseudonym(a) for a in applicants}
    adverse_texts = set(credit_decisioning.ADVERSE_REASONS.values())
    favourable_texts = set(credit_decisioning.FAVOURABLE_REASONS.values())
    versions = Counter()
    for span in by_id.values():
        a = span.attributes
        score, outcome = a[semconv.DECISION_SCORE], a[semconv.DECISION_OUTCOME]
        assert a[semconv.DECISION_THRESHOLD] == credit_decisioning.THRESHOLD
        assert outcome == ("approve" if score >= 0.5 else "deny")
        assert a[semconv.DECISION_CONFIDENCE] == pytest.approx(max(score, 1 - score))
        reasons = list(a[semconv.DECISION_REASONS])
        assert len(reasons) == 4 and len(set(reasons)) == 4
        version = a[semconv.DECISION_MODEL_VERSION]
        challenger_denial = version == credit_decisioning.CHALLENGER_VERSION and outcome == "deny"
        if challenger_denial:  # the challenger's template ends on a vague catch-all (reason_quality finds it)
            assert reasons[3] == credit_decisioning.CHALLENGER_CATCH_ALL_REASON
            reasons = reasons[:3]
        assert set(reasons) <= (adverse_texts if outcome == "deny" else favourable_texts)
        borderline = abs(score - 0.5) < credit_decisioning.REVIEW_BAND
        assert a[semconv.DECISION_REVIEW_REQUIRED] is borderline
        assert a[semconv.DECISION_AUTOMATION] == ("human_in_loop" if borderline else "automated")
        assert a[semconv.DECISION_SUBJECT_ID] in expected_subjects
        assert a[semconv.DECISION_SEGMENT] in {"18-25", "26-40", "41-65", "65+"}
        assert list(a[semconv.DECISION_REGULATIONS]) == ["ECOA-RegB-1002.9", "FINRA-4511", "GDPR-22"]
        assert a[semconv.DECISION_RETENTION_CLASS] == "finra-6y"
        assert a[semconv.DECISION_RETENTION_BASIS].startswith("FINRA Rule 4511(b)")
        assert list(a[semconv.DECISION_DATA_SOURCES]) == ["application-form", "credit-bureau"]
        assert list(a[semconv.DECISION_DATASET_VERSIONS]) == list(credit_decisioning.DATASET_VERSIONS)
        assert a.get(semconv.DECISION_LEGAL_BASIS) == (
            "contract" if a[semconv.DECISION_MODEL_VERSION] == credit_decisioning.CHAMPION_VERSION else None)
        assert a[semconv.PREFECT_TASK_NAME] == "score_applications"
        inputs = json.loads(a[semconv.DECISION_INPUTS])
        for key in ("applicant_id", "first_name", "last_name", "ssn", "email", "phone", "date_of_birth"):
            assert inputs[key] == semconv.REDACTION_SENTINEL, key
        assert isinstance(inputs["income"], float) and isinstance(inputs["debt_to_income"], float)
        versions[version] += 1
        # The challenger pipeline records no rationale: missing_rationale finds it.
        assert (semconv.DECISION_RATIONALE in a) is (version == credit_decisioning.CHAMPION_VERSION)
    assert set(versions) == {credit_decisioning.CHAMPION_VERSION, credit_decisioning.CHALLENGER_VERSION}
    assert 0.03 * n < versions[credit_decisioning.CHALLENGER_VERSION] < 0.25 * n
    outcomes = Counter(s.attributes[semconv.DECISION_OUTCOME] for s in by_id.values())
    assert outcomes["deny"] == counts["denials"] > 0 and outcomes["approve"] > 0
    # Every automated denial's notice went out (recorded once, after the retried batch), but every 10th.
    automated_denials = sorted(
        (s.start_time, i) for i, s in by_id.items()
        if s.attributes[semconv.DECISION_OUTCOME] == "deny" and s.attributes[semconv.DECISION_AUTOMATION] == "automated"
    )
    notices = [s for s in spans if s.name == semconv.EVENT_SPAN_NAME]
    noticed = [s.attributes[semconv.DECISION_ID] for s in notices]
    assert len(noticed) == len(set(noticed)) and set(noticed) < {i for _t, i in automated_denials}
    assert {s.attributes[semconv.DECISION_EVENT_TYPE] for s in notices} == {"notice"}
    assert {s.attributes[semconv.DECISION_EVENT_CHANNEL] for s in notices} == {"mail"}
    assert len(automated_denials) - len(noticed) >= len(automated_denials) // 10 - 2

    # No identity value appears in clear anywhere in any span.
    text = all_attribute_text(spans)
    for applicant in applicants.values():
        for key in ("ssn", "email", "applicant_id", "date_of_birth"):
            assert applicant[key] not in text, key
        assert f'"{applicant["first_name"]}"' not in text


def test_credit_review_flow_records_reviews_and_overrides(captured):
    counts = credit_decisioning.run(n=200, seed=7)
    spans = spans_of(captured)
    decisions = {s.attributes[semconv.DECISION_ID]: s for s in spans
                 if s.name == f"decision {credit_decisioning.DECISION_TYPE}"}
    reviews = [s for s in spans if s.name == semconv.REVIEW_SPAN_NAME]
    assert len(reviews) == counts["reviews"] > 0
    overrides = [r for r in reviews if r.attributes[semconv.DECISION_REVIEW_ACTION] == "override"]
    assert len(overrides) == counts["overrides"] > 0
    flagged = {i for i, s in decisions.items() if s.attributes[semconv.DECISION_REVIEW_REQUIRED]}
    assert len(flagged) == counts["review_queue"]
    # Analysts do not reach the whole queue: some flagged decisions stay unreviewed.
    assert 0 < len(reviews) < len(flagged)
    raw_reviewers = set(credit_decisioning.REVIEWERS)
    for review in reviews:
        a = review.attributes
        decision = decisions[a[semconv.DECISION_ID]]
        assert a[semconv.DECISION_ID] in flagged
        assert a[semconv.DECISION_REVIEW_ORIGINAL_OUTCOME] == decision.attributes[semconv.DECISION_OUTCOME]
        assert a[semconv.DECISION_REVIEW_REVIEWER_ID] in {pseudonym(r) for r in raw_reviewers}
        assert a[semconv.PREFECT_FLOW_NAME] == "credit-manual-review"
        assert a[semconv.PREFECT_FLOW_RUN_ID] != decision.attributes[semconv.PREFECT_FLOW_RUN_ID]
        # linked to the decision's span (same process: the registry knows it)
        assert [link.context.span_id for link in review.links] == [decision.context.span_id]
        if a[semconv.DECISION_REVIEW_ACTION] == "override":
            assert a[semconv.DECISION_REVIEW_NEW_OUTCOME] in {"approve", "deny"}
            assert a[semconv.DECISION_REVIEW_NEW_OUTCOME] != a[semconv.DECISION_REVIEW_ORIGINAL_OUTCOME]
    review_text = all_attribute_text(reviews)
    assert not any(reviewer in review_text for reviewer in raw_reviewers)


# --- clinical triage ---------------------------------------------------------------------------
def test_clinical_triage_referrals_pseudonyms_and_clinician_reviews(captured):
    counts = clinical_triage.run(n=None, seed=7)
    spans = spans_of(captured)
    decisions = [s for s in spans if s.name == f"decision {clinical_triage.DECISION_TYPE}"]
    assert len(decisions) == counts["decisions"] == 171  # the held-out 30% of 569 real cases
    referred = set()
    for span in decisions:
        a = span.attributes
        confidence, p_malignant = a[semconv.DECISION_CONFIDENCE], a[semconv.DECISION_SCORE]
        expected = ("refer" if confidence < clinical_triage.REFERRAL_CONFIDENCE
                    else "urgent" if p_malignant >= 0.5 else "routine")
        assert a[semconv.DECISION_OUTCOME] == expected
        assert a[semconv.DECISION_REVIEW_REQUIRED] is (expected == "refer")
        assert a[semconv.DECISION_AUTOMATION] == ("human_in_loop" if expected == "refer" else "automated")
        assert len(a[semconv.DECISION_REASONS]) == 4
        assert a[semconv.DECISION_MODEL_NAME] == "triage-lr" and a[semconv.DECISION_MODEL_VERSION] == "1.4.0"
        inputs = json.loads(a[semconv.DECISION_INPUTS])
        for key in ("patient_id", "mrn", "patient_name"):
            assert inputs[key] == semconv.REDACTION_SENTINEL
        assert len(inputs["biopsy_features"]) == 30  # the real measurements stay in clear
        assert len(a[semconv.DECISION_SUBJECT_ID]) == 64 and not a[semconv.DECISION_SUBJECT_ID].startswith("P-")
        if expected == "refer":
            referred.add(a[semconv.DECISION_ID])
    outcomes = Counter(s.attributes[semconv.DECISION_OUTCOME] for s in decisions)
    assert set(outcomes) == {"routine", "urgent", "refer"}
    assert counts["referrals"] == len(referred) > 0
    subjects = {s.attributes[semconv.DECISION_SUBJECT_ID] for s in decisions}
    assert subjects == {pseudonym(f"P-07{i:05d}") for i in range(171)}
    text = all_attribute_text(spans)
    assert "P-0700000" not in text and "MRN" not in text

    reviews = [s for s in spans if s.name == semconv.REVIEW_SPAN_NAME]
    assert {r.attributes[semconv.DECISION_ID] for r in reviews} == referred  # every referral reviewed
    actions = Counter(r.attributes[semconv.DECISION_REVIEW_ACTION] for r in reviews)
    assert actions["override"] == counts["overrides"] > 0
    for review in reviews:
        a = review.attributes
        if a[semconv.DECISION_REVIEW_ACTION] == "override":
            assert a[semconv.DECISION_REVIEW_ORIGINAL_OUTCOME] == "refer"
            assert a[semconv.DECISION_REVIEW_NEW_OUTCOME] in {"urgent", "routine"}


# --- existing flow: zero code changes ----------------------------------------------------------
def test_existing_flow_has_no_otel_decisions_code():
    tree = ast.parse((EXAMPLES_DIR / "existing_flow.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(name.startswith("otel_decisions") for name in imported), imported


def test_existing_flow_is_captured_without_code_changes(captured):
    counts = existing_flow.run(n=12, seed=5)
    spans = spans_of(captured)
    decisions = [s for s in spans if s.name.startswith(semconv.DECISION_SPAN_PREFIX)]
    assert len(decisions) == counts["decisions"] == 12
    task_runs = set()
    for span in decisions:
        a = span.attributes
        assert span.name == "decision screen_transaction"
        assert a[semconv.DECISION_SOURCE] == "auto"
        assert a[semconv.DECISION_OUTCOME] in {"fraud", "legit"}
        assert 0.5 <= a[semconv.DECISION_CONFIDENCE] <= 1.0
        assert a[semconv.DECISION_THRESHOLD] == existing_flow.FRAUD_THRESHOLD
        assert a[semconv.DECISION_MODEL_NAME] == "fraud-gbm" and a[semconv.DECISION_MODEL_VERSION] == "2024.11"
        assert a[semconv.PREFECT_FLOW_NAME] == "fraud-screening"
        inputs = json.loads(a[semconv.DECISION_INPUTS])
        assert inputs["transaction"]["card_number"] == semconv.REDACTION_SENTINEL
        assert inputs["transaction"]["customer_email"] == semconv.REDACTION_SENTINEL
        assert sorted(a[semconv.DECISION_REDACTED]) == ["inputs.transaction.card_number",
                                                        "inputs.transaction.customer_email"]
        task_runs.add(a[semconv.PREFECT_TASK_RUN_ID])
    assert len(task_runs) == 12  # one decision per mapped task run
    assert "4111111111111111" not in all_attribute_text(spans)
