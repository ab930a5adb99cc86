"""Human oversight where Prefect users work: review forms in the Prefect UI, and the evidence report.

- :func:`request_review` / :func:`request_reviews` pause (or suspend) a flow run with a typed review
  form in the Prefect UI and record the reviewer's answer as a ``decision.review`` linked to the decision;
- :func:`write_evidence_report` writes the self-contained HTML evidence report for a period or one flow run.

The decision artifacts on every flow run are made by the instrumentor
(:mod:`otel_decisions.instrumentation._artifacts`): they need no store.

Example::

    from otel_decisions.oversight import request_review

    @flow
    def underwrite(application):
        review = request_review(score(application), timeout=3600)   # a form in the Prefect UI
        return review.outcome
"""

from otel_decisions.oversight._evidence import check_flow_run_id, check_period, write_evidence_report
from otel_decisions.oversight._review import (
    ReviewResult,
    arequest_review,
    arequest_reviews,
    request_review,
    request_reviews,
)

__all__ = [
    "ReviewResult",
    "arequest_review",
    "arequest_reviews",
    "check_flow_run_id",
    "check_period",
    "request_review",
    "request_reviews",
    "write_evidence_report",
]
