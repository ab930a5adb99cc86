"""A "flow process" for delivery fault-injection tests: records decision spans durably.

Settings come from the environment (``OTEL_DECISIONS_*``, ``OTEL_EXPORTER_OTLP_*``), as in a
user's process. Each decision id is appended to ``--returned`` (one ``write(2)`` per id)
right after ``span.end()`` returned, so the test knows which recording calls completed even
if this process is killed. Ids refused by the quota policy go to ``--rejected`` and the
error message to stderr.

Example::

    python -m tests.delivery_helpers.recorder --count 1000 --returned /tmp/ids.txt
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import uuid

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from otel_decisions import _runtime, semconv
from otel_decisions.settings import load_settings
from otel_decisions.delivery import DurableSpanProcessor, SpoolQuotaError
from otel_decisions.sdk import build_exporters


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--returned", required=True)
    parser.add_argument("--rejected")
    parser.add_argument("--flow-run-id", default=str(uuid.uuid4()))
    parser.add_argument("--pace-s", type=float, default=0.0, help="sleep between decisions")
    parser.add_argument("--no-ship", action="store_true", help="record only (nothing is exported)")
    parser.add_argument("--flush-s", type=float, default=0.0, help="force_flush timeout before exit")
    parser.add_argument("--shutdown-timeout-s", type=float, default=1.0)
    parser.add_argument("--wait-file", help="after recording, wait until this file exists before shutting down")
    parser.add_argument("--stop-on-reject", action="store_true")
    parser.add_argument("--flow-span", action="store_true", help="wrap the decisions in a flow-run span with the count")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s")

    settings = load_settings()
    processor = DurableSpanProcessor(
        build_exporters(settings), settings, shutdown_timeout_s=args.shutdown_timeout_s, ship=not args.no_ship
    )
    provider = TracerProvider(resource=Resource.create({semconv.SERVICE_NAME: "delivery-test"}))
    provider.add_span_processor(processor)
    tracer = provider.get_tracer(semconv.INSTRUMENTATION_SCOPE)
    returned = os.open(args.returned, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    rejected = os.open(args.rejected, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600) if args.rejected else None
    print("recording", flush=True)
    flow_span = None
    if args.flow_span:
        flow_span = tracer.start_span(
            "delivery-test-flow",
            attributes={
                semconv.PREFECT_RUN_TYPE: "flow",
                semconv.PREFECT_RUN_ID: args.flow_run_id,
                semconv.PREFECT_FLOW_NAME: "delivery-test-flow",
            },
        )
        context = trace.set_span_in_context(flow_span)
    else:
        context = None
    captured = 0
    for index in range(args.count):
        decision_id = str(uuid.uuid4())
        span = tracer.start_span(
            semconv.DECISION_SPAN_PREFIX + "credit.approval",
            attributes={
                semconv.DECISION_ID: decision_id,
                semconv.DECISION_TYPE: "credit.approval",
                semconv.DECISION_OUTCOME: "approve" if index % 3 else "deny",
                semconv.DECISION_CONFIDENCE: 0.5 + (index % 50) / 100,
                semconv.DECISION_REASONS: ("income", "history"),
                semconv.PREFECT_FLOW_RUN_ID: args.flow_run_id,
            },
            context=context,
        )
        span.end()  # never raises: a refused record is handed to the recording call (the contract)
        exc = _runtime.take_refusal()
        if isinstance(exc, SpoolQuotaError):
            print(f"REJECTED: {exc}", file=sys.stderr, flush=True)
            if rejected is not None:
                os.write(rejected, (decision_id + "\n").encode())
            if args.stop_on_reject:
                break
            continue
        os.write(returned, (decision_id + "\n").encode())
        captured += 1
        if args.pace_s:
            time.sleep(args.pace_s)
    if flow_span is not None:
        flow_span.set_attribute(semconv.DECISION_FLOW_CAPTURED, captured)
        flow_span.end()
    print("recorded", flush=True)
    if args.wait_file:
        while not os.path.exists(args.wait_file):
            time.sleep(0.05)
    if args.flush_s:
        print("flushed" if processor.force_flush(int(args.flush_s * 1000)) else "flush timed out", flush=True)
    provider.shutdown()
    print("done", flush=True)


if __name__ == "__main__":
    main()
