"""Credit decisioning: a real scikit-learn model decides loan applications inside Prefect tasks.

What it shows, using only the public ``otel_decisions`` API:

- synthetic applicants from a fixed seed (numpy), with synthetic identity fields (invented names,
  SSNs in the never-issued 9xx range, ``@example.com`` e-mail, 555-01xx phone numbers) that the
  privacy policy masks before anything is recorded;
- a logistic-regression model trained at start on labels from a hidden rule plus noise;
- per applicant: outcome, confidence, score and the threshold in force, the top four principal
  reasons from the model's own feature contributions (coefficient x standardised value), mapped to
  Reg B style reason texts, the model and policy version, regulations and retention class;
- about 10% of applications routed to a challenger model version (not yet approved, whose
  pipeline records no rationale, no GDPR 22(2) legal basis, and ends its denial reasons on a vague
  catch-all: the catalogue's governance queries find all four);
- adverse-action notices recorded with :func:`otel_decisions.record_notice` for automated denials
  (every 10th still in the letter service's backlog), data sources and dataset versions on each decision;
- borderline scores (|p - 0.5| < 0.1) require a human review; a second flow run is the review
  queue, where analysts confirm or override the model with :func:`otel_decisions.record_review`;
- idempotent decision ids: a scoring task whose notice step fails once is retried by Prefect
  and re-records the same decision ids, so storage counts each decision once.

Run it like a user script (embedded chDB under the default data directory)::

    python examples/credit_decisioning.py            # or: python -m examples.credit_decisioning

or call :func:`run` after ``otel_decisions.configure()`` and ``PrefectInstrumentor().instrument()``.
"""

from __future__ import annotations

import math
import uuid
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import otel_decisions

__all__ = [
    "CHALLENGER_VERSION",
    "CHAMPION_VERSION",
    "DECISION_TYPE",
    "MODEL_NAME",
    "credit_decisioning_flow",
    "credit_review_flow",
    "generate_applicants",
    "run",
]

DECISION_TYPE = "credit.approval"
MODEL_NAME = "credit-lr"
CHAMPION_VERSION = "3.2.0"
CHALLENGER_VERSION = "3.3.0-rc1"
MODEL_PROVIDER = "in-house"
POLICY_VERSION = "credit-policy-2026.02"
THRESHOLD = 0.5
REVIEW_BAND = 0.1
"""Scores within this distance of the threshold go to a human."""
CHALLENGER_SHARE = 0.1
REGULATIONS = ("ECOA-RegB-1002.9", "FINRA-4511", "GDPR-22")
DATA_SOURCES = ("application-form", "credit-bureau")
DATASET_VERSIONS = ("bureau-extract@2026-11-30", "training-set@2026-10")
LEGAL_BASIS = "contract"
"""GDPR Art. 22(2)(a): deciding the application is necessary for the credit contract. The challenger pipeline
does not record a basis yet (the automated_without_legal_basis query finds it)."""
CHALLENGER_CATCH_ALL_REASON = "Does not meet our internal standards"
NOTICE_BACKLOG = 10
"""Every 10th automated denial's notice is still in the letter service's backlog (adverse_action_notices)."""
RETENTION_CLASS = "finra-6y"
OUTCOMES = ("approve", "deny")
BATCH_SIZE = 100

FEATURES = (
    "income",
    "debt_to_income",
    "credit_history_years",
    "delinquencies",
    "utilisation",
    "loan_amount",
    "employment_years",
)
# Reason given when a feature pushes towards denial (Reg B 1002.9(b)(2) / sample form C-1 wording).
ADVERSE_REASONS = {
    "income": "Income insufficient for amount of credit requested",
    "debt_to_income": "Excessive obligations in relation to income",
    "credit_history_years": "Length of credit history insufficient",
    "delinquencies": "Delinquent past or present credit obligations with others",
    "utilisation": "Proportion of balances to credit limits on revolving accounts too high",
    "loan_amount": "Amount of credit requested too high for the applicant's profile",
    "employment_years": "Length of employment insufficient",
}
# Key factor given when a feature pushes towards approval.
FAVOURABLE_REASONS = {
    "income": "Income sufficient for amount of credit requested",
    "debt_to_income": "Low obligations in relation to income",
    "credit_history_years": "Established credit history",
    "delinquencies": "No delinquent credit obligations",
    "utilisation": "Low revolving balances relative to credit limits",
    "loan_amount": "Amount of credit requested within the applicant's profile",
    "employment_years": "Stable employment history",
}

_FIRST_NAMES = ("Avery", "Jordan", "Riley", "Morgan", "Casey", "Quinn", "Rowan", "Emerson", "Harper", "Sage",
                "Linden", "Marlo", "Tamsin", "Ellis", "Corin", "Juno")
_LAST_NAMES = ("Ashgrove", "Brightwater", "Calloway", "Dunmore", "Everhart", "Fairbanks", "Greystone",
               "Hollowell", "Ironwood", "Kestrel", "Larkspur", "Merriweather")
_AGE_BANDS = ((18, 25, "18-25"), (26, 40, "26-40"), (41, 65, "41-65"), (66, 120, "65+"))
REVIEWERS = ("analyst-01", "analyst-02", "analyst-03", "analyst-04")
_OVERRIDE_REASONS = {
    "approve": (
        "Verified additional income from recent pay statements",
        "Reported delinquency disputed and corrected on the bureau file",
        "Co-applicant income documented; obligations ratio within policy",
    ),
    "deny": (
        "Income documentation inconsistent with the application",
        "Undisclosed obligations found on the bureau file",
    ),
}

_flaky_notice_runs: set[str] = set()
"""Run keys whose notice service already failed once (a transient fault, then recovery)."""


# --- data ---------------------------------------------------------------------------------------
def _age_band(age: int) -> str:
    return next(label for low, high, label in _AGE_BANDS if low <= age <= high)


def generate_applicants(n: int, seed: int) -> list[dict[str, Any]]:
    """*n* synthetic applications: features plus synthetic identity fields (never real people)."""
    rng = np.random.default_rng(seed)
    age = rng.integers(19, 78, size=n)
    income = np.round(np.exp(rng.normal(10.9, 0.45, size=n)), -2)
    history = np.clip(np.round((age - 18) * rng.uniform(0.2, 0.9, size=n), 1), 0, None)
    applicants = []
    for i in range(n):
        first = _FIRST_NAMES[rng.integers(len(_FIRST_NAMES))]
        last = _LAST_NAMES[rng.integers(len(_LAST_NAMES))]
        applicants.append({
            "applicant_id": f"APP-{seed:02d}-{i:05d}",
            "first_name": first,
            "last_name": last,
            "ssn": f"9{rng.integers(0, 100):02d}-{rng.integers(1, 100):02d}-{rng.integers(1, 10000):04d}",
            "email": f"{first.lower()}.{last.lower()}{i}@example.com",
            "phone": f"+1-202-555-01{rng.integers(0, 100):02d}",
            "date_of_birth": f"{2026 - int(age[i])}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}",
            "age_band": _age_band(int(age[i])),
            "income": float(income[i]),
            "debt_to_income": round(float(np.clip(rng.beta(2.2, 5.0), 0.02, 0.95)), 3),
            "credit_history_years": float(history[i]),
            "delinquencies": int(rng.poisson(0.45)),
            "utilisation": round(float(np.clip(rng.beta(2.0, 3.2), 0.0, 1.0)), 3),
            "loan_amount": float(np.round(rng.uniform(2_000, 60_000), -2)),
            "employment_years": round(float(np.clip(rng.exponential(5.0), 0, age[i] - 18)), 1),
        })
    return applicants


def _matrix(applicants: Sequence[dict[str, Any]]) -> np.ndarray:
    rows = [[math.log(a["income"]) if f == "income" else float(a[f]) for f in FEATURES] for a in applicants]
    return np.asarray(rows, dtype=float)


def _hidden_log_odds(x: np.ndarray) -> np.ndarray:
    """The "true" creditworthiness the model has to learn (unknown to it)."""
    log_income, dti, history, delinquencies, utilisation, loan, employment = x.T
    return (0.4 + 2.0 * (log_income - 10.9) - 6.0 * (dti - 0.3) + 0.09 * (history - 8) - 0.9 * delinquencies
            - 2.2 * (utilisation - 0.38) - 0.000035 * (loan - 31_000) + 0.06 * (employment - 5))


def _labels(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noisy = _hidden_log_odds(x) + rng.logistic(0.0, 0.6, size=len(x))
    return (noisy > 0).astype(int)  # 1 = would repay: approve


# --- tasks ---------------------------------------------------------------------------------------
@task(cache_policy=NO_CACHE)
def load_applications(n: int, seed: int) -> list[dict[str, Any]]:
    """Today's applications (synthetic)."""
    return generate_applicants(n, seed)


@task(cache_policy=NO_CACHE)
def train_models(seed: int, history_size: int = 4000) -> dict[str, Pipeline]:
    """Train the champion and the challenger on historical (synthetic) applications."""
    rng = np.random.default_rng(seed + 1000)
    history = _matrix(generate_applicants(history_size, seed + 1))
    labels = _labels(history, rng)
    models = {}
    for version, c in ((CHAMPION_VERSION, 1.0), (CHALLENGER_VERSION, 0.05)):
        model = Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression(C=c, max_iter=500))])
        models[version] = model.fit(history, labels)
    return models


def _reasons(model: Pipeline, row: np.ndarray, adverse: bool) -> list[str]:
    """Top four principal reasons: the features whose contribution pushed hardest towards the outcome."""
    scaler: StandardScaler = model.named_steps["scale"]
    coef = model.named_steps["lr"].coef_[0]
    contributions = coef * (row - scaler.mean_) / scaler.scale_
    order = np.argsort(contributions) if adverse else np.argsort(-contributions)
    texts = ADVERSE_REASONS if adverse else FAVOURABLE_REASONS
    return [texts[FEATURES[j]] for j in order[:4]]


def _routed_to_challenger(applicant_id: str) -> bool:
    # A stable hash split: the same applicant always sees the same model version.
    return zlib.crc32(applicant_id.encode()) % 100 < CHALLENGER_SHARE * 100


def _verified_creditworthy(applicant_id: str, row: np.ndarray) -> bool:
    """What an analyst's document check would establish (the hidden rule plus the applicant's circumstances)."""
    rng = np.random.default_rng(zlib.crc32(applicant_id.encode()))
    return bool(_hidden_log_odds(row[None, :])[0] + rng.logistic(0.0, 0.6) > 0)


def _decision_id(run_key: str, applicant_id: str) -> str:
    # Deterministic per application and run: a retried task re-records the same decision.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"credit-decision:{run_key}:{applicant_id}"))


def _send_adverse_action_notices(run_key: str, batch_no: int, denied: Sequence[str]) -> None:
    """Stand-in for the notice service (it times out once on the first batch of each run): each automated
    denial's Reg B notice goes out by mail and is recorded with :func:`otel_decisions.record_notice`."""
    if batch_no == 0 and denied and run_key not in _flaky_notice_runs:
        _flaky_notice_runs.add(run_key)
        raise TimeoutError("adverse action notice service timed out (transient)")
    for position, decision_id in enumerate(denied):
        if position % NOTICE_BACKLOG == NOTICE_BACKLOG - 1:
            continue  # still in the letter service's backlog
        otel_decisions.record_notice(decision_id, channel="mail", sent_by="notice-service",
                                     reference=f"AAN-{decision_id[:8]}")


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=0)
def score_applications(models: dict[str, Pipeline], applications: list[dict[str, Any]], batch_no: int,
                       run_key: str) -> dict[str, Any]:
    """Decide a batch of applications; every decision is recorded with :func:`record_decision`.

    Returns the borderline cases for manual underwriting and the number of denials.
    """
    x = _matrix(applications)
    queue: list[dict[str, Any]] = []
    denials = 0
    denied: list[str] = []
    for i, app in enumerate(applications):
        version = CHALLENGER_VERSION if _routed_to_challenger(app["applicant_id"]) else CHAMPION_VERSION
        model = models[version]
        p_approve = float(model.predict_proba(x[i : i + 1])[0, 1])
        outcome = "approve" if p_approve >= THRESHOLD else "deny"
        borderline = abs(p_approve - THRESHOLD) < REVIEW_BAND
        reasons = _reasons(model, x[i], adverse=outcome == "deny")
        if version == CHALLENGER_VERSION and outcome == "deny":
            # the challenger's notice template still ends on a catch-all (reason_quality finds it)
            reasons = [*reasons[:3], CHALLENGER_CATCH_ALL_REASON]
        rationale = None
        if version == CHAMPION_VERSION:  # the challenger pipeline does not yet produce a rationale
            rationale = (f"P(approve)={p_approve:.3f} against threshold {THRESHOLD:.2f}: {outcome}. "
                         f"Principal factor: {reasons[0]}."
                         + (" Borderline score: sent to manual underwriting." if borderline else ""))
        decision = otel_decisions.record_decision(
            id=_decision_id(run_key, app["applicant_id"]),
            type=DECISION_TYPE,
            outcome=outcome,
            options=OUTCOMES,
            confidence=max(p_approve, 1.0 - p_approve),
            score=p_approve,
            threshold=THRESHOLD,
            rationale=rationale,
            reasons=reasons,
            inputs=app,
            output={"decision": outcome, "p_approve": round(p_approve, 4)},
            subject_id=app["applicant_id"],
            model_name=MODEL_NAME,
            model_version=version,
            model_provider=MODEL_PROVIDER,
            policy_version=POLICY_VERSION,
            automation=(otel_decisions.Automation.HUMAN_IN_LOOP if borderline else otel_decisions.Automation.AUTOMATED).value,
            review_required=borderline,
            regulations=REGULATIONS,
            retention_class=RETENTION_CLASS,
            segment=app["age_band"],
            legal_basis=LEGAL_BASIS if version == CHAMPION_VERSION else None,
            data_sources=DATA_SOURCES,
            dataset_versions=DATASET_VERSIONS,
        )
        denials += outcome == "deny"
        if outcome == "deny" and not borderline:
            denied.append(decision.id)
        if borderline:
            # The queue holds ids only (flow parameters are stored by Prefect: no personal data).
            queue.append({"decision_id": decision.id, "outcome": outcome, "p_approve": round(p_approve, 4),
                          "verified_creditworthy": _verified_creditworthy(app["applicant_id"], x[i])})
    _send_adverse_action_notices(run_key, batch_no, denied)
    return {"review_queue": queue, "denials": denials}


@task(cache_policy=NO_CACHE)
def work_review_queue(queue: list[dict[str, Any]], seed: int, capacity: float = 0.85) -> dict[str, int]:
    """Analysts work the manual-underwriting queue; what they cannot reach stays in the backlog."""
    rng = np.random.default_rng(seed + 2000)
    counts = {"reviews": 0, "overrides": 0}
    for item in queue:
        if rng.random() >= capacity:
            continue  # backlog: still waiting for a human
        reviewer = REVIEWERS[int(rng.integers(len(REVIEWERS)))]
        # What the analyst finds in the documents (the hidden truth), against what the model said.
        creditworthy = item["verified_creditworthy"]
        disagrees = creditworthy != (item["outcome"] == "approve")
        # analyst-04 never overrides: the kind of pattern override_rate_by_reviewer exposes.
        if disagrees and reviewer != "analyst-04" and rng.random() < 0.75:
            new_outcome = "approve" if creditworthy else "deny"
            reasons = _OVERRIDE_REASONS[new_outcome]
            otel_decisions.record_review(item["decision_id"], reviewer=reviewer, action="override",
                                         original_outcome=item["outcome"], new_outcome=new_outcome,
                                         reason=reasons[int(rng.integers(len(reasons)))])
            counts["overrides"] += 1
        else:
            otel_decisions.record_review(item["decision_id"], reviewer=reviewer, action="approve",
                                         original_outcome=item["outcome"],
                                         reason="File reviewed; model outcome confirmed")
        counts["reviews"] += 1
    return counts


# --- flows ---------------------------------------------------------------------------------------
@flow(name="credit-decisioning")
def credit_decisioning_flow(n: int = 200, seed: int = 7, run_key: str | None = None) -> dict[str, Any]:
    """Score today's applications; returns the manual-underwriting queue and the number of denials."""
    run_key = run_key or str(uuid.uuid4())
    applications = load_applications(n, seed)
    models = train_models(seed)
    queue: list[dict[str, Any]] = []
    denials = 0
    for batch_no, start in enumerate(range(0, len(applications), BATCH_SIZE)):
        scored = score_applications(models, applications[start : start + BATCH_SIZE], batch_no, run_key)
        queue += scored["review_queue"]
        denials += scored["denials"]
    return {"review_queue": queue, "denials": denials}


@flow(name="credit-manual-review")
def credit_review_flow(queue: list[dict[str, Any]], seed: int = 7) -> dict[str, int]:
    """The manual-underwriting queue, worked in a later flow run."""
    return work_review_queue(queue, seed)


def run(n: int = 200, seed: int = 7) -> dict[str, int]:
    """Run both flows (call after ``configure()`` and ``PrefectInstrumentor().instrument()``).

    Returns counts: ``decisions``, ``denials``, ``review_queue``, ``reviews``, ``overrides``.
    """
    scored = credit_decisioning_flow(n=n, seed=seed)
    counts = credit_review_flow(scored["review_queue"], seed=seed)
    return {"decisions": n, "denials": scored["denials"], "review_queue": len(scored["review_queue"]), **counts}


if __name__ == "__main__":
    otel_decisions.configure(service_name="credit-decisioning")
    otel_decisions.PrefectInstrumentor().instrument()
    print(run())
    otel_decisions.force_flush()
