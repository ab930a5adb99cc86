"""What the decision artifacts cost a flow run, measured against the same flow without them, in one run.

Run: ``.venv/bin/python benchmarks/oversight.py [DECISIONS_PER_RUN]`` (default 200). On Prefect's test
harness (a real Prefect server), the same warm flow records DECISIONS_PER_RUN decisions in one task
and ends; it runs alternately with ``flow_artifacts`` on and off, and the script prints the median flow
run time of each and their ratio, and the per-decision cost of ``record_decision`` inside the task with
each setting (with artifacts on, each decision's artifact row and counts are kept). The machine is
noisy: compare the ratios, not the times.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult  # noqa: E402

import otel_decisions  # noqa: E402


class DiscardExporter(SpanExporter):
    def export(self, spans):  # type: ignore[override]
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


INPUTS = {f"feature_{i}": i * 1.5 for i in range(18)} | {"applicant_id": "APP-SYN-1", "email": "a.b@example.org"}


def _configure(artifacts: bool, data_dir: str) -> None:
    otel_decisions.configure(exporters=["none"], span_exporters=[DiscardExporter()], durable=False,
                             hmac_key="benchmark-key-0123456789abcdef", data_dir=data_dir, flow_artifacts=artifacts,
                             service_name="oversight-benchmark")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    from prefect import flow, task
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    @task
    def score(count: int) -> float:
        started = time.perf_counter()
        for i in range(count):
            otel_decisions.record_decision(type="credit.approval", outcome="deny" if i % 3 else "approve",
                                           confidence=0.7, score=0.45, threshold=0.5, inputs=INPUTS,
                                           subject_id=f"APP-SYN-{i}", model_name="m", model_version="1",
                                           review_required=i % 10 == 0)
        return (time.perf_counter() - started) / count

    @flow(name="artifact-benchmark")
    def scoring(count: int) -> float:
        return score(count)

    data_dir = tempfile.mkdtemp(prefix="oversight-bench-")
    with prefect_test_harness(server_startup_timeout=120), temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        otel_decisions.PrefectInstrumentor().instrument()
        runs: dict[bool, list[float]] = {True: [], False: []}
        per_call: dict[bool, list[float]] = {True: [], False: []}
        for artifacts in (True, False):  # warm both paths
            _configure(artifacts, data_dir)
            scoring(n)
        for _ in range(15):
            for artifacts in (True, False):
                _configure(artifacts, data_dir)
                started = time.perf_counter()
                per_call[artifacts].append(scoring(n))
                runs[artifacts].append(time.perf_counter() - started)
    on, off = statistics.median(runs[True]), statistics.median(runs[False])
    print(f"flow run with {n} decisions: artifacts on {on * 1e3:.1f} ms, off {off * 1e3:.1f} ms "
          f"(ratio {on / off:.2f}x; +{(on - off) * 1e3:.1f} ms per flow run)")
    c_on, c_off = statistics.median(per_call[True]), statistics.median(per_call[False])
    print(f"record_decision in the flow's task: artifacts on {c_on * 1e6:.1f} us, off {c_off * 1e6:.1f} us "
          f"(ratio {c_on / c_off:.2f}x: the artifact row and counts kept per decision)")


if __name__ == "__main__":
    main()
