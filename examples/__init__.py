"""Example flows that use otel-decisions the way a user would (only the public API).

- :mod:`examples.credit_decisioning`: a scikit-learn credit model, Reg B principal reasons,
  a challenger version, and a manual-underwriting review queue with overrides.
- :mod:`examples.clinical_triage`: triage on scikit-learn's bundled breast-cancer data, with
  referrals below a confidence threshold and clinician reviews.
- :mod:`examples.existing_flow`: a fraud-screening flow with no otel-decisions code, captured
  by the instrumentor alone.

Each module has ``run(n, seed) -> dict[str, int]``; call it after ``otel_decisions.configure()``
and ``otel_decisions.PrefectInstrumentor().instrument()``. :func:`run_all` runs the three.

Example::

    import otel_decisions
    from examples import run_all
    otel_decisions.configure(dsn="chdb:///tmp/demo")
    otel_decisions.PrefectInstrumentor().instrument()
    print(run_all())
"""

from __future__ import annotations

__all__ = ["APPROVED_MODELS", "run_all"]

APPROVED_MODELS: tuple[tuple[str, str], ...] = (
    ("credit-lr", "3.2.0"),
    ("triage-lr", "1.4.0"),
)
"""(model name, version) pairs the demo's model-risk function has approved. The credit challenger
``3.3.0-rc1`` and the existing flow's ``fraud-gbm`` are deliberately absent: they are what
``unapproved_model_decisions`` finds."""


def run_all(*, credit: int = 200, clinical: int | None = None, fraud: int = 40, seed: int = 7) -> dict[str, dict[str, int]]:
    """Run every example (credit: *credit* applicants; clinical: *clinical* cases, all when None;
    fraud: *fraud* transactions). Returns each example's counts by example name."""
    from examples import clinical_triage, credit_decisioning, existing_flow

    return {
        "credit_decisioning": credit_decisioning.run(n=credit, seed=seed),
        "clinical_triage": clinical_triage.run(n=clinical, seed=seed),
        "existing_flow": existing_flow.run(n=fraud, seed=seed),
    }
