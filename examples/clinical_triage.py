"""Clinical triage on real data: scikit-learn's bundled breast-cancer data set (no download).

A scaled logistic-regression pipeline is trained at start on a fixed-seed split; each held-out
biopsy is classified benign / malignant and triaged:

- ``urgent``: malignant with confidence at or above the referral threshold;
- ``routine``: benign with confidence at or above the referral threshold;
- ``refer``: confidence below the threshold: a clinician must decide (``review_required``,
  ``human_in_loop``). A later flow run is the clinicians' worklist, recorded with
  :func:`otel_decisions.record_review`.

Patients get synthetic identifiers (``P-…``), MRNs and names in the inputs: the privacy policy masks
them, and ``subject_id`` (the patient id) is stored only as an HMAC pseudonym. Reasons are the
features that contributed most to the classification, from the model's own coefficients.

Run it like a user script::

    python examples/clinical_triage.py            # or: python -m examples.clinical_triage
"""

from __future__ import annotations

from typing import Any

import numpy as np
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import otel_decisions

__all__ = ["DECISION_TYPE", "MODEL_NAME", "MODEL_VERSION", "clinical_review_flow", "clinical_triage_flow", "run"]

DECISION_TYPE = "clinical.triage"
MODEL_NAME = "triage-lr"
MODEL_VERSION = "1.4.0"
MODEL_PROVIDER = "in-house"
POLICY_VERSION = "triage-protocol-7"
CLASSIFICATION_THRESHOLD = 0.5
"""P(malignant) at or above this classifies as malignant."""
REFERRAL_CONFIDENCE = 0.9
"""Below this confidence the case is referred to a clinician."""
REGULATIONS = ("HIPAA-164.312(b)", "EU-AI-Act-Art14", "GDPR-22")
RETENTION_CLASS = "hipaa-6y"
LEGAL_BASIS = "consent"
"""GDPR Art. 22(2)(c) with Art. 22(4) / 9(2)(a): the patient's explicit consent to automated triage."""
DATA_SOURCES = ("pathology-lab", "patient-record")
DATASET_VERSIONS = ("wdbc@sklearn-1.0",)
OPTIONS = ("routine", "urgent", "refer")
CLINICIANS = ("dr-okafor", "dr-lindqvist", "dr-moreau")

_GIVEN = ("Alex", "Sam", "Noor", "Kai", "Robin", "Dana", "Ira", "Lee", "Mika", "Tove")
_FAMILY = ("Aldenmoor", "Brackwell", "Cinderby", "Dovecote", "Elmsworth", "Foxhollow", "Gallowmere")


def _patients(count: int, seed: int) -> list[dict[str, str]]:
    """Synthetic identities for the held-out biopsies (never real people)."""
    rng = np.random.default_rng(seed + 500)
    people = []
    for i in range(count):
        people.append({
            "patient_id": f"P-{seed:02d}{i:05d}",
            "mrn": f"MRN{rng.integers(10**7, 10**8)}",
            "patient_name": f"{_GIVEN[rng.integers(len(_GIVEN))]} {_FAMILY[rng.integers(len(_FAMILY))]}",
            "age_band": ("30-44", "45-59", "60-74", "75+")[int(rng.integers(4))],
        })
    return people


@task(cache_policy=NO_CACHE)
def train_triage_model(seed: int) -> dict[str, Any]:
    """Fit the pipeline on the training split; return it with the held-out cases."""
    data = load_breast_cancer()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.3, random_state=seed, stratify=data.target
    )
    model = Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression(C=0.3, max_iter=2000))])
    model.fit(x_train, y_train)
    return {"model": model, "x": x_test, "y": y_test, "features": list(data.feature_names)}


def _reasons(model: Pipeline, row: np.ndarray, features: list[str], malignant: bool) -> list[str]:
    scaler: StandardScaler = model.named_steps["scale"]
    # The classifier's positive class is "benign" (target 1): negative contributions point to malignant.
    contributions = model.named_steps["lr"].coef_[0] * (row - scaler.mean_) / scaler.scale_
    order = np.argsort(contributions) if malignant else np.argsort(-contributions)
    direction = "suggests malignancy" if malignant else "within benign range"
    return [f"{features[j]} {direction} (z={float((row[j] - scaler.mean_[j]) / scaler.scale_[j]):+.1f})"
            for j in order[:4]]


@task(cache_policy=NO_CACHE)
def triage_cases(trained: dict[str, Any], n: int | None, seed: int) -> dict[str, Any]:
    """Classify and triage the held-out cases; returns the number triaged and the referral worklist."""
    model: Pipeline = trained["model"]
    x, y, features = trained["x"], trained["y"], trained["features"]
    count = len(x) if n is None else min(n, len(x))
    patients = _patients(count, seed)
    p_malignant_all = model.predict_proba(x[:count])[:, 0]  # class 0 = malignant
    worklist = []
    for i in range(count):
        p_malignant = float(p_malignant_all[i])
        malignant = p_malignant >= CLASSIFICATION_THRESHOLD
        label = "malignant" if malignant else "benign"
        confidence = max(p_malignant, 1.0 - p_malignant)
        refer = confidence < REFERRAL_CONFIDENCE
        outcome = "refer" if refer else ("urgent" if malignant else "routine")
        reasons = _reasons(model, x[i], features, malignant)
        rationale = (f"Classified {label} with P(malignant)={p_malignant:.3f}; confidence {confidence:.2f} "
                     + (f"below the referral threshold {REFERRAL_CONFIDENCE:.2f}: referred to a clinician."
                        if refer else f"meets the referral threshold {REFERRAL_CONFIDENCE:.2f}: {outcome} pathway."))
        patient = patients[i]
        decision = otel_decisions.record_decision(
            type=DECISION_TYPE,
            outcome=outcome,
            options=OPTIONS,
            confidence=confidence,
            score=p_malignant,
            threshold=CLASSIFICATION_THRESHOLD,
            rationale=rationale,
            reasons=reasons,
            inputs={**patient, "biopsy_features": dict(zip(features, map(float, np.round(x[i], 5))))},
            output={"classification": label, "p_malignant": round(p_malignant, 4), "triage": outcome},
            subject_id=patient["patient_id"],
            model_name=MODEL_NAME,
            model_version=MODEL_VERSION,
            model_provider=MODEL_PROVIDER,
            policy_version=POLICY_VERSION,
            automation=(otel_decisions.Automation.HUMAN_IN_LOOP if refer else otel_decisions.Automation.AUTOMATED).value,
            review_required=refer,
            regulations=REGULATIONS,
            retention_class=RETENTION_CLASS,
            segment=patient["age_band"],
            legal_basis=LEGAL_BASIS,
            data_sources=DATA_SOURCES,
            dataset_versions=DATASET_VERSIONS,
        )
        if refer:
            # Ids and the pathology result the clinician will see; no identifiers leave the task.
            worklist.append({"decision_id": decision.id, "outcome": outcome,
                             "pathology": "malignant" if int(y[i]) == 0 else "benign"})
    return {"triaged": count, "worklist": worklist}


@task(cache_policy=NO_CACHE)
def clinician_review(worklist: list[dict[str, Any]], seed: int) -> dict[str, int]:
    """Clinicians decide every referred case, choosing the pathway the pathology supports."""
    rng = np.random.default_rng(seed + 700)
    counts = {"reviews": 0, "overrides": 0}
    for item in worklist:
        clinician = CLINICIANS[int(rng.integers(len(CLINICIANS)))]
        counts["reviews"] += 1
        if rng.random() < 0.15:
            otel_decisions.record_review(item["decision_id"], reviewer=clinician, action="escalate",
                                         original_outcome=item["outcome"],
                                         reason="Equivocal cytology: second opinion from the multidisciplinary team.")
            continue
        pathway = "urgent" if item["pathology"] == "malignant" else "routine"
        otel_decisions.record_review(
            item["decision_id"], reviewer=clinician, action="override", original_outcome=item["outcome"],
            new_outcome=pathway,
            reason=f"Reviewed imaging and cytology: {item['pathology']} features; {pathway} pathway.",
        )
        counts["overrides"] += 1
    return counts


@flow(name="clinical-triage")
def clinical_triage_flow(n: int | None = None, seed: int = 7) -> dict[str, Any]:
    """Triage the held-out biopsies (all of them when *n* is None); returns the count and the referral worklist."""
    trained = train_triage_model(seed)
    return triage_cases(trained, n, seed)


@flow(name="clinical-referral-review")
def clinical_review_flow(worklist: list[dict[str, Any]], seed: int = 7) -> dict[str, int]:
    """Clinicians work the referral worklist in a later flow run."""
    return clinician_review(worklist, seed)


def run(n: int | None = None, seed: int = 7) -> dict[str, int]:
    """Run both flows (call after ``configure()`` and ``PrefectInstrumentor().instrument()``).

    *n* caps the number of held-out cases (171 with the default split). Returns counts:
    ``decisions``, ``referrals``, ``reviews``, ``overrides``.
    """
    triaged = clinical_triage_flow(n=n, seed=seed)
    counts = clinical_review_flow(triaged["worklist"], seed=seed)
    return {"decisions": triaged["triaged"], "referrals": len(triaged["worklist"]), **counts}


if __name__ == "__main__":
    otel_decisions.configure(service_name="clinical-triage")
    otel_decisions.PrefectInstrumentor().instrument()
    print(run())
    otel_decisions.force_flush()
