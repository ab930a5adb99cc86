"""An existing Prefect flow, written with no otel-decisions calls at all: card-fraud screening.

Nothing in this file imports ``otel_decisions``. Its ``screen_transaction`` task returns a plain
dict with a ``label`` and a ``probability``; once the application (or ``otel-decisions demo``) has
run ``otel_decisions.configure()`` and ``PrefectInstrumentor().instrument()``, every such return
value becomes a decision record (``decision.source = auto``) whose inputs are the task's
parameters after the privacy pipeline: zero code changes.

Standalone, it runs as it always did (no records)::

    python examples/existing_flow.py

Captured, from the shell, with no change to this file::

    python -c "import otel_decisions as o; o.configure(); o.PrefectInstrumentor().instrument(); \\
               from examples.existing_flow import run; run()"
"""

from __future__ import annotations

from typing import Any

import numpy as np
from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE
from sklearn.ensemble import GradientBoostingClassifier

__all__ = ["MODEL_NAME", "MODEL_VERSION", "fraud_screening_flow", "run"]

MODEL_NAME = "fraud-gbm"
MODEL_VERSION = "2024.11"
FRAUD_THRESHOLD = 0.5
_FEATURES = ("amount", "hour", "foreign", "card_present", "merchant_risk", "velocity_24h")
_MERCHANTS = ("grocery", "fuel", "electronics", "travel", "gift-cards", "restaurants", "pharmacy")
_MERCHANT_RISK = {"grocery": 0.1, "fuel": 0.2, "electronics": 0.6, "travel": 0.5, "gift-cards": 0.9,
                  "restaurants": 0.15, "pharmacy": 0.1}
_TEST_CARDS = ("4111111111111111", "5555555555554444", "378282246310005", "6011111111111117")
"""Published payment-processor test card numbers, not real cards."""


def _transactions(n: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed + 3000)
    out = []
    for i in range(n):
        merchant = _MERCHANTS[int(rng.integers(len(_MERCHANTS)))]
        out.append({
            "transaction_id": f"TX-{seed:02d}-{i:06d}",
            "card_number": _TEST_CARDS[int(rng.integers(len(_TEST_CARDS)))],
            "customer_email": f"cardholder{i}@example.com",
            "merchant_category": merchant,
            "amount": round(float(np.exp(rng.normal(3.8, 1.1))), 2),
            "hour": int(rng.integers(0, 24)),
            "foreign": bool(rng.random() < 0.12),
            "card_present": bool(rng.random() < 0.55),
            "velocity_24h": int(rng.poisson(2.0)),
        })
    return out


def _features(tx: dict[str, Any]) -> list[float]:
    return [tx["amount"], tx["hour"], float(tx["foreign"]), float(tx["card_present"]),
            _MERCHANT_RISK[tx["merchant_category"]], tx["velocity_24h"]]


@task(cache_policy=NO_CACHE)
def train_fraud_model(seed: int) -> GradientBoostingClassifier:
    """Fit the screening model on historical (synthetic) transactions with a hidden fraud rule."""
    history = _transactions(3000, seed + 1)
    x = np.asarray([_features(t) for t in history])
    rng = np.random.default_rng(seed + 3001)
    logit = (-3.2 + 0.004 * x[:, 0] + 1.4 * x[:, 2] - 1.1 * x[:, 3] + 2.5 * x[:, 4] + 0.35 * x[:, 5]
             + 0.9 * ((x[:, 1] < 5) | (x[:, 1] > 22)))
    y = (logit + rng.logistic(0, 0.7, size=len(x)) > 0).astype(int)
    return GradientBoostingClassifier(n_estimators=60, max_depth=3, random_state=seed).fit(x, y)


@task(cache_policy=NO_CACHE)
def screen_transaction(model: GradientBoostingClassifier, transaction: dict[str, Any]) -> dict[str, Any]:
    """Score one transaction; hold it for the fraud team above the threshold."""
    p_fraud = float(model.predict_proba(np.asarray([_features(transaction)]))[0, 1])
    label = "fraud" if p_fraud >= FRAUD_THRESHOLD else "legit"
    return {
        "transaction_id": transaction["transaction_id"],
        "label": label,
        "probability": p_fraud if label == "fraud" else 1.0 - p_fraud,
        "threshold": FRAUD_THRESHOLD,
        "model": MODEL_NAME,
        "model_version": MODEL_VERSION,
        "action": "hold" if label == "fraud" else "release",
    }


@task(cache_policy=NO_CACHE)
def load_transactions(n: int, seed: int) -> list[dict[str, Any]]:
    """The transactions waiting for screening (synthetic)."""
    return _transactions(n, seed)


@flow(name="fraud-screening")
def fraud_screening_flow(n: int = 40, seed: int = 7) -> list[dict[str, Any]]:
    """Screen *n* transactions, one task run each."""
    model = train_fraud_model(seed)
    transactions = load_transactions(n, seed)
    futures = screen_transaction.map(model=unmapped(model), transaction=transactions)
    return [future.result() for future in futures]


def run(n: int = 40, seed: int = 7) -> dict[str, int]:
    """Run the flow; returns ``decisions`` (task results) and ``held`` (labelled fraud)."""
    results = fraud_screening_flow(n=n, seed=seed)
    return {"decisions": len(results), "held": sum(r["label"] == "fraud" for r in results)}


if __name__ == "__main__":
    print(run())
