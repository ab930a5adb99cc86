"""Storage benchmark: exporter insert rate into chDB, and typed vs attribute-map query latency.

Prints, in one run:

1. decisions/s written through ``ClickHouseSpanExporter`` (span → row mapping + insert + the
   ``decisions`` materialized view) in batches of 1,000 and 10,000, against a baseline of
   inserting the same pre-mapped rows with clickhouse-connect alone (target: >= 30,000/s at 10,000);
2. the latency of five catalogue queries over 1,000,000 decisions (typed ``decisions`` table)
   against the same questions asked of the raw ``SpanAttributes`` map in ``otel_traces``
   (targets: typed >= 10x faster, each under 200 ms).

Run: ``.venv/bin/python benchmarks/storage.py [--decisions 1000000] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from otel_decisions import semconv  # noqa: E402
from otel_decisions.clickhouse.client import get_client  # noqa: E402
from otel_decisions.clickhouse.exporter import ClickHouseSpanExporter  # noqa: E402
from otel_decisions.clickhouse.mapping import TRACES_COLUMNS, TRACES_INSERT_TYPES, span_to_row  # noqa: E402
from otel_decisions.clickhouse.schema import apply_migrations  # noqa: E402
from otel_decisions.queries import get_query, run_query  # noqa: E402
from tests.seed import build_seed  # noqa: E402


def decision_spans(n: int, seed: int) -> list:
    data = build_seed(n, seed, start=datetime.now(timezone.utc), days=0.02, service_name="bench")
    return [s for s in data.spans if s.name.startswith(semconv.DECISION_SPAN_PREFIX)]


def insert_rates(client, baseline_client) -> None:
    print("== insert rate through ClickHouseSpanExporter (chDB) ==")
    for batch, total in ((1_000, 10_000), (10_000, 30_000)):
        spans = decision_spans(total, seed=batch)
        exporter = ClickHouseSpanExporter(client=client)
        exporter.export(spans[:10])  # schema + warm-up
        start = time.perf_counter()
        for i in range(0, len(spans), batch):
            assert exporter.export(spans[i : i + batch]).name == "SUCCESS"
        elapsed = time.perf_counter() - start
        rate = len(spans) / elapsed

        rows = [span_to_row(s) for s in spans]
        start = time.perf_counter()
        for i in range(0, len(rows), batch):
            baseline_client.insert(
                "otel_traces", rows[i : i + batch], column_names=list(TRACES_COLUMNS), column_type_names=list(TRACES_INSERT_TYPES)
            )
        base_rate = len(rows) / (time.perf_counter() - start)
        target = "  (target >= 30,000/s: " + ("met)" if rate >= 30_000 else "NOT met)") if batch == 10_000 else ""
        print(
            f"batch {batch:>6,}: {rate:>9,.0f} decisions/s through the exporter; "
            f"pre-mapped rows, insert only: {base_rate:>9,.0f}/s (exporter = {rate / base_rate:.2f}x of insert-only){target}"
        )


GENERATE = """
INSERT INTO otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName,
    ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode, StatusMessage)
SELECT
    toDateTime64('2026-01-05 00:00:00', 9, 'UTC') + toIntervalMillisecond(intDiv(number * 4838400, {n:UInt64}) * 1000 + number % 1000),
    lower(hex(cityHash64(number, 1))) || lower(hex(cityHash64(number, 2))),
    lower(hex(cityHash64(number, 3))),
    lower(hex(cityHash64(number, 4))),
    '',
    'decision credit.approval',
    'Internal',
    'bench',
    map('service.name', 'bench', 'telemetry.sdk.language', 'python', 'telemetry.sdk.name', 'opentelemetry'),
    'otel_decisions',
    '0.1.0',
    map(
        'decision.id', toString(generateUUIDv4(number)),
        'decision.type', 'credit.approval',
        'decision.outcome', ['approve', 'approve', 'deny', 'refer'][1 + cityHash64(number, 5) % 4],
        'decision.options', '["approve","deny","refer"]',
        'decision.score', toString(round((cityHash64(number, 6) % 10000) / 10000, 4)),
        'decision.threshold', '0.5',
        'decision.rationale', if(number % 17 = 0, '', 'score below cut-off; debt-to-income ratio too high'),
        'decision.reasons', if(number % 23 = 0, '[]', '["debt-to-income ratio too high","insufficient credit history"]'),
        'decision.inputs', concat('{"income":', toString(20000 + cityHash64(number, 7) % 180000), ',"segment":"x"}'),
        'decision.inputs.digest', lower(hex(SHA256(toString(number)))),
        'decision.output', '{"outcome":"deny"}',
        'decision.subject.id', concat('subj-', toString(cityHash64(number, 8) % 300000)),
        'decision.model.name', 'credit-scorer',
        'decision.model.version', ['1.0', '1.1', '2.0'][1 + cityHash64(number, 9) % 3],
        'decision.model.provider', 'in-house',
        'decision.policy.version', 'policy-2026.1',
        'decision.automation', 'automated',
        'decision.review.required', if(cityHash64(number, 10) % 5 = 0, 'true', 'false'),
        'decision.regulations', '["ECOA-RegB-1002.9","FCRA-615"]',
        'decision.retention.class', 'finra-6y',
        'decision.redacted', '[]',
        'decision.integrity.seq', toString(number + 1),
        'decision.integrity.hash', lower(hex(SHA256(toString(number + 1)))),
        'decision.integrity.prev_hash', lower(hex(SHA256(toString(number)))),
        'decision.source', 'explicit',
        'decision.pseudonym.key_id', 'benchkey00000000',
        'decision.segment', ['18-25', '26-40', '41-65', '65+'][1 + cityHash64(number, 11) % 4],
        'gen_ai.request.model', 'credit-scorer',
        'prefect.flow_run.id', toString(generateUUIDv4(intDiv(number, 10))),
        'prefect.task_run.id', toString(generateUUIDv4(number + 1000000000)),
        'prefect.flow.name', 'credit-decisioning',
        'prefect.task.name', 'score-application',
        'decision.confidence', toString(round(0.35 + (cityHash64(number, 12) % 6400) / 10000, 4))
    ),
    1000000,
    'Unset',
    ''
FROM numbers({n:UInt64})
"""

# The same five questions asked of the raw attribute map (no typed layer).
MAP_QUERIES = {
    "adverse_action_reasons": """
        SELECT SpanAttributes['decision.id'] AS decision_id, Timestamp, SpanAttributes['decision.type'],
               SpanAttributes['decision.subject.id'], SpanAttributes['decision.outcome'] AS outcome,
               JSONExtract(SpanAttributes['decision.reasons'], 'Array(String)') AS reasons,
               reasons[1], reasons[2], reasons[3], reasons[4], length(reasons),
               SpanAttributes['decision.model.name'], SpanAttributes['decision.model.version'], SpanAttributes['decision.policy.version']
        FROM otel_traces
        WHERE startsWith(SpanName, 'decision ') AND Timestamp >= {start:DateTime64(3)} AND Timestamp < {end:DateTime64(3)}
          AND has(['deny', 'decline'], outcome)
        ORDER BY Timestamp, decision_id""",
    "subject_decisions": """
        SELECT SpanAttributes['decision.id'], Timestamp, SpanAttributes['decision.type'], SpanAttributes['decision.outcome'],
               toFloat64OrNull(SpanAttributes['decision.confidence']), SpanAttributes['decision.rationale'],
               JSONExtract(SpanAttributes['decision.reasons'], 'Array(String)'), SpanAttributes['decision.inputs.digest'],
               SpanAttributes['decision.model.name'], SpanAttributes['decision.model.version']
        FROM otel_traces
        WHERE startsWith(SpanName, 'decision ') AND SpanAttributes['decision.subject.id'] = {subject_id:String}
        ORDER BY Timestamp""",
    "confidence_drift_weekly": """
        SELECT SpanAttributes['decision.model.name'] AS m, SpanAttributes['decision.model.version'] AS v,
               toMonday(Timestamp) AS week, count(), round(avg(toFloat64OrNull(SpanAttributes['decision.confidence'])), 4),
               quantilesExact(0.1, 0.5)(toFloat64OrNull(SpanAttributes['decision.confidence'])) AS deciles,
               round(deciles[1], 4), round(deciles[2], 4)
        FROM otel_traces
        WHERE startsWith(SpanName, 'decision ') AND mapContains(SpanAttributes, 'decision.confidence')
        GROUP BY m, v, week ORDER BY m, v, week""",
    "outcome_rates_by_segment": """
        SELECT SpanAttributes['decision.segment'] AS segment, count() AS decisions,
               countIf(SpanAttributes['decision.outcome'] = 'approve') AS favourable,
               round(favourable / decisions, 4) AS rate
        FROM otel_traces
        WHERE startsWith(SpanName, 'decision ') AND segment != '' AND SpanAttributes['decision.type'] = 'credit.approval'
        GROUP BY segment ORDER BY segment""",
    "adverse_reason_frequency": """
        SELECT reason, count() AS times_cited, countIf(reason_rank = 1), round(avg(reason_rank), 3)
        FROM
        (
            SELECT JSONExtract(SpanAttributes['decision.reasons'], 'Array(String)') AS reasons
            FROM otel_traces
            WHERE startsWith(SpanName, 'decision ') AND Timestamp >= {start:DateTime64(3)} AND Timestamp < {end:DateTime64(3)}
              AND has({adverse_outcomes:Array(String)}, SpanAttributes['decision.outcome'])
        )
        ARRAY JOIN reasons AS reason, arrayEnumerate(reasons) AS reason_rank
        GROUP BY reason ORDER BY times_cited DESC, reason""",
}


def timed(fn, repeat: int) -> tuple[float, int]:
    fn()  # warm-up
    samples, rows = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        rows = fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), rows


def query_latency(client, n: int, repeat: int) -> None:
    print(f"\n== query latency over {n:,} decisions (median of {repeat}) ==")
    start = time.perf_counter()
    client.command(GENERATE.replace("{n:UInt64}", str(int(n))))
    print(f"generated {n:,} decision spans in otel_traces (+ decisions via the view) in {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    client.command("OPTIMIZE TABLE decisions FINAL")
    print(f"OPTIMIZE decisions FINAL: {time.perf_counter() - start:.1f} s; "
          f"decisions = {client.command('SELECT count() FROM decisions FINAL'):,}")
    subject = client.command("SELECT subject_id FROM decisions LIMIT 1")
    params = {
        # one day of adverse-action notices (list query: both sides pay for moving ~4,400 rows)
        "adverse_action_reasons": {"start": "2026-01-12 00:00:00", "end": "2026-01-13 00:00:00"},
        "subject_decisions": {"subject_id": subject},
        "confidence_drift_weekly": {},
        "outcome_rates_by_segment": {},
        "adverse_reason_frequency": {"start": "2026-01-05 00:00:00", "end": "2026-02-02 00:00:00", "adverse_outcomes": "deny,decline"},
    }
    print(f"{'query':<26} {'typed ms':>9} {'map ms':>9} {'speed-up':>9} {'rows':>7}  targets (>=10x, <200 ms)")
    for name, values in params.items():
        query = get_query(name)
        typed, typed_rows = timed(lambda: len(run_query(client, query, values).rows), repeat)
        map_params = {k: query.param(k).convert(v) for k, v in values.items()}  # type: ignore[union-attr]
        raw, raw_rows = timed(lambda: len(client.query(MAP_QUERIES[name], parameters=map_params).result_rows), repeat)
        ok = ("ok" if raw / typed >= 10 else "below 10x") + ", " + ("ok" if typed < 0.2 else "over 200 ms")
        print(f"{name:<26} {typed * 1e3:>9.1f} {raw * 1e3:>9.1f} {raw / typed:>8.1f}x {typed_rows:>7}  {ok}"
              + ("" if typed_rows == raw_rows else f"  (map query returned {raw_rows} rows)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    path = tempfile.mkdtemp(prefix="otel-decisions-bench-")
    client = get_client(f"chdb://{path}?database=inserts")
    apply_migrations(client)
    baseline = get_client(f"chdb://{path}?database=baseline")
    apply_migrations(baseline)
    insert_rates(client, baseline)
    queries = get_client(f"chdb://{path}?database=queries")
    apply_migrations(queries)
    query_latency(queries, args.decisions, args.repeat)
    print(f"\ndata directory: {path}")


if __name__ == "__main__":
    main()
