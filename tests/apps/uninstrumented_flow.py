"""A flow written with no otel-decisions (or OpenTelemetry) code at all: run under opentelemetry-instrument."""

from prefect import flow, task


@task
def screen(transaction: dict) -> dict:
    risky = transaction["amount"] > 5000
    return {"label": "fraud" if risky else "legit", "probability": 0.93 if risky else 0.88}


@flow
def screening() -> list[dict]:
    return [screen({"amount": a, "card_number": "4111 1111 1111 1111"}) for a in (120, 9000)]


if __name__ == "__main__":
    print("RESULT", screening())
