"""A flow whose tasks run in a ProcessPoolTaskRunner, with no otel-decisions code: the plugin records."""

import sys

from prefect import flow, task
from prefect.task_runners import ProcessPoolTaskRunner


@task
def score(n: int) -> dict:
    return {"decision": "approve" if n % 3 else "refer", "confidence": 0.6 + n / 100}


@flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
def pooled(k: int) -> list[dict]:
    futures = score.map(range(k))
    return [f.result() for f in futures]


if __name__ == "__main__":
    results = pooled(int(sys.argv[1]) if len(sys.argv) > 1 else 6)
    print("RESULT", len(results))
