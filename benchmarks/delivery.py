"""Durable delivery against the SDK's stock BatchSpanProcessor, measured in one run.

Prints, for a burst of decision spans recorded as fast as possible into a real OTLP/HTTP
receiver process (tests/delivery_helpers/otlp_receiver.py):

- the recording cost (start + attributes + ``span.end()``, mean and p99 per call) of the stock
  path, the durable path in group-commit mode (default) and in strict-fsync mode;
- sustained throughput: spans/s recorded, and spans/s until everything was delivered;
- what each path lost, with the endpoint healthy and with the endpoint down during the burst;
- the OTLP exporter's own encoding throughput (the target the durable path must sustain).

Targets (issue 5): durable recording cost <= 1.5x stock; durable recording throughput >= OTLP encode.

Example::

    .venv/bin/python benchmarks/delivery.py --count 50000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402

from otel_decisions import semconv  # noqa: E402
from otel_decisions.settings import DecisionSettings  # noqa: E402
from otel_decisions.delivery import DurableSpanProcessor  # noqa: E402
from tests.delivery_helpers.harness import Receiver, free_port  # noqa: E402


def record(provider: TracerProvider, count: int, sample_every: int = 10) -> tuple[float, list[float]]:
    """Record ``count`` decision spans; returns total seconds and a sample of per-call seconds."""
    tracer = provider.get_tracer(semconv.INSTRUMENTATION_SCOPE)
    samples: list[float] = []
    clock = time.perf_counter
    begin = clock()
    for index in range(count):
        start = clock()
        span = tracer.start_span(
            semconv.DECISION_SPAN_PREFIX + "credit.approval",
            attributes={
                semconv.DECISION_ID: str(uuid.uuid4()),
                semconv.DECISION_TYPE: "credit.approval",
                semconv.DECISION_OUTCOME: "approve" if index % 3 else "deny",
                semconv.DECISION_CONFIDENCE: 0.87,
                semconv.DECISION_SCORE: 712.0,
                semconv.DECISION_THRESHOLD: 680.0,
                semconv.DECISION_REASONS: ("income", "credit history", "debt ratio"),
                semconv.DECISION_RATIONALE: "score above the cut-off; stable income",
                semconv.DECISION_INPUTS_DIGEST: "9f2c" * 16,
                semconv.DECISION_MODEL_NAME: "credit-gbm",
                semconv.DECISION_MODEL_VERSION: "3.2.1",
                semconv.DECISION_AUTOMATION: "automated",
                semconv.PREFECT_FLOW_RUN_ID: "4c1e8a2e-0000-4000-8000-000000000000",
                semconv.PREFECT_TASK_NAME: "score_applicant",
            },
        )
        span.end()
        if index % sample_every == 0:
            samples.append(clock() - start)
    return clock() - begin, samples


def wait_delivered(receiver: Receiver, count: int, timeout_s: float) -> float:
    """Seconds until the receiver holds ``count`` distinct decisions (or the timeout)."""
    begin = time.perf_counter()
    receiver.wait_for(count, timeout_s)
    return time.perf_counter() - begin


def provider_with(processor: SpanProcessor) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({semconv.SERVICE_NAME: "delivery-benchmark"}))
    provider.add_span_processor(processor)
    return provider


def exporter(port: int) -> OTLPSpanExporter:
    return OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=5)


def row(name: str, total: float, samples: list[float], count: int) -> dict[str, float | str]:
    ordered = sorted(samples)
    return {
        "path": name,
        "mean_us": total / count * 1e6,
        "p50_us": statistics.median(ordered) * 1e6,
        "p99_us": ordered[int(len(ordered) * 0.99)] * 1e6,
        "recorded_per_s": count / total,
    }


def spool_append_rate(count: int, work: Path) -> tuple[float, float]:
    """(spans/s appended to the spool by on_end alone, spans/s OTLP-encoded) on the same finished spans."""
    spans: list[ReadableSpan] = []

    class Keep(SpanProcessor):
        def on_end(self, span: ReadableSpan) -> None:
            spans.append(span)

    record(provider_with(Keep()), min(count, 20_000))
    processor = DurableSpanProcessor([], DecisionSettings(data_dir=work / "append"), ship=False)
    begin = time.perf_counter()
    for span in spans:
        processor.on_end(span)
    append_rate = len(spans) / (time.perf_counter() - begin)
    processor.shutdown()
    begin = time.perf_counter()
    for offset in range(0, len(spans), 512):
        encode_spans(spans[offset : offset + 512]).SerializePartialToString()
    return append_rate, len(spans) / (time.perf_counter() - begin)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=50_000, help="spans per burst (healthy endpoint)")
    parser.add_argument("--down-count", type=int, default=20_000, help="spans per burst with the endpoint down")
    parser.add_argument("--strict-count", type=int, default=2_000, help="spans in strict-fsync mode")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="otel-decisions-bench-"))
    results: list[dict[str, float | str]] = []
    lost: dict[str, str] = {}

    append_rate, encode_rate = spool_append_rate(args.count, work)

    # --- healthy endpoint -------------------------------------------------------------
    with Receiver(work / "stock.sqlite") as stock_rx, Receiver(work / "durable.sqlite") as durable_rx:
        stock = provider_with(BatchSpanProcessor(exporter(stock_rx.port)))
        total, samples = record(stock, args.count)
        results.append(row("stock BatchSpanProcessor", total, samples, args.count))
        stock.force_flush(60_000)
        delivered_s = total + wait_delivered(stock_rx, args.count, 5)
        stock.shutdown()
        got = stock_rx.stats()["distinct"]
        results[-1]["delivered_per_s"] = got / delivered_s
        lost["stock, healthy endpoint"] = f"{args.count - got} of {args.count}"

        settings = DecisionSettings(data_dir=work / "durable")
        durable = provider_with(DurableSpanProcessor([exporter(durable_rx.port)], settings))
        total, samples = record(durable, args.count)
        results.append(row("durable, group commit (default)", total, samples, args.count))
        delivered_s = total + wait_delivered(durable_rx, args.count, 300)
        durable.shutdown()
        got = durable_rx.stats()["distinct"]
        results[-1]["delivered_per_s"] = got / delivered_s
        lost["durable, healthy endpoint"] = f"{args.count - got} of {args.count}"

    with Receiver(work / "strict.sqlite") as strict_rx:
        settings = DecisionSettings(data_dir=work / "strict", strict_fsync=True)
        strict = provider_with(DurableSpanProcessor([exporter(strict_rx.port)], settings))
        total, samples = record(strict, args.strict_count, sample_every=1)
        results.append(row("durable, strict fsync", total, samples, args.strict_count))
        delivered_s = total + wait_delivered(strict_rx, args.strict_count, 120)
        strict.shutdown()
        results[-1]["delivered_per_s"] = strict_rx.stats()["distinct"] / delivered_s

    # --- endpoint down during the burst, up afterwards ------------------------------------
    for name in ("stock", "durable"):
        port = free_port()
        if name == "stock":
            processor: SpanProcessor = BatchSpanProcessor(exporter(port))
        else:
            processor = DurableSpanProcessor(
                [exporter(port)],
                DecisionSettings(data_dir=work / "down", retry_initial_backoff_s=0.1, retry_max_backoff_s=0.5),
            )
        provider = provider_with(processor)
        record(provider, args.down_count)
        with Receiver(work / f"down-{name}.sqlite", port=port) as receiver:
            provider.force_flush(60_000)
            receiver.wait_for(args.down_count, 5 if name == "stock" else 120)
            provider.shutdown()
            got = receiver.stats()["distinct"]
        lost[f"{name}, endpoint down during the burst"] = f"{args.down_count - got} of {args.down_count}"

    print(f"\nDurable delivery benchmark ({args.count} decision spans per burst; OTLP/HTTP receiver on 127.0.0.1)\n")
    print(f"{'path':34} {'mean µs':>9} {'p50 µs':>9} {'p99 µs':>9} {'recorded/s':>11} {'delivered/s':>12}")
    for result in results:
        print(
            f"{result['path']:34} {result['mean_us']:9.1f} {result['p50_us']:9.1f} {result['p99_us']:9.1f} "
            f"{result['recorded_per_s']:11.0f} {result['delivered_per_s']:12.0f}"
        )
    print(f"\nspool append (DurableSpanProcessor.on_end alone): {append_rate:,.0f} spans/s")
    print(f"OTLP exporter encode (encode_spans, batches of 512): {encode_rate:,.0f} spans/s")
    print("\nlost:")
    for key, value in lost.items():
        print(f"  {key:42} {value}")
    ratio = float(results[1]["mean_us"]) / float(results[0]["mean_us"])
    ratio_p50 = float(results[1]["p50_us"]) / float(results[0]["p50_us"])
    throughput_ratio = append_rate / encode_rate
    print(f"\nrecording cost, durable group commit / stock: mean {ratio:.2f}x, p50 {ratio_p50:.2f}x "
          f"(target <= 1.5x) {'OK' if max(ratio, ratio_p50) <= 1.5 else 'MISSED'}")
    print(f"spool append throughput / OTLP encode throughput: {throughput_ratio:.2f}x (target >= 1.0x) "
          f"{'OK' if throughput_ratio >= 1.0 else 'MISSED'}")
    print(f"delivered/s, durable / stock: {float(results[1]['delivered_per_s']) / float(results[0]['delivered_per_s']):.2f}x")


if __name__ == "__main__":
    main()
