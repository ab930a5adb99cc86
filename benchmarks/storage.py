"""Storage benchmark: exporter insert rate into chDB, and typed vs attribute-map query latency.

Prints, in one run:

Both for the embedded database as served now (HTTP to the owner process's ClickHouse listener)
and for the earlier in-process path (clickhouse-connect's chDB backend), side by side:

1. decisions/s written through ``ClickHouseSpanExporter`` (span → Arrow mapping + insert + the
   views behind ``otel_traces``) in batches of 1,000 and 10,000, against baselines inserting the
   same rows, mapped before the clock starts, with clickhouse-connect alone (Native rows and Arrow
   tables, the exporter's insert settings), plus the floors: Arrow inserts into an ``otel_traces``
   without views, and the mapping alone (target: >= 50,000/s at 10,000 into the served store);
2. the latency of five catalogue queries over 1,000,000 decisions (+ ~100,000 reviews; typed
   ``decisions`` / ``decision_reviews``) against the same questions asked of the raw
   ``SpanAttributes`` maps in ``otel_traces``, with the per-query floor (``SELECT 1``) and each
   answer's transfer floor (targets: typed >= 10x faster, each under 200 ms).

Run: ``.venv/bin/python benchmarks/storage.py [--decisions 1000000] [--repeat 5] [--rounds 5] [--skip-queries]``
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
from otel_decisions.store.client import get_client  # noqa: E402
from otel_decisions.store.exporter import INSERT_SETTINGS, ClickHouseSpanExporter  # noqa: E402
from otel_decisions.store.mapping import TRACES_COLUMNS, TRACES_INSERT_TYPES, span_to_row, spans_to_arrow  # noqa: E402
from otel_decisions.store.schema import apply_migrations  # noqa: E402
from otel_decisions.catalogue import get_query, run_query  # noqa: E402
from tests.seed import build_seed  # noqa: E402


def decision_spans(n: int, seed: int) -> list:
    data = build_seed(n, seed, start=datetime.now(timezone.utc), days=0.02, service_name="bench")
    return [s for s in data.spans if s.name.startswith(semconv.DECISION_SPAN_PREFIX)]


def insert_rates(label: str, client, baseline_client, bare_client, rounds: int) -> dict[int, float]:
    print(f"== {label}: insert rate through ClickHouseSpanExporter (median of {rounds} interleaved rounds) ==")
    rates: dict[int, float] = {}
    for batch, total in ((1_000, 10_000), (10_000, 30_000)):
        spans = decision_spans(total, seed=batch)
        exporter = ClickHouseSpanExporter(client=client, insert_rows=batch)
        exporter.export(spans[:10])  # schema + warm-up
        # Baselines: the same rows, mapped before the clock starts, inserted by clickhouse-connect
        # alone with the exporter's insert settings: as Native rows (client.insert, the classic
        # path) and as Arrow tables (client.insert_arrow, what the exporter sends).
        rows = [span_to_row(s) for s in spans]
        tables = [spans_to_arrow(spans[i : i + batch]) for i in range(0, len(spans), batch)]
        baseline_client.insert_arrow("otel_traces", tables[0].slice(0, 10), settings=INSERT_SETTINGS)  # warm-up

        def through_exporter() -> None:
            for i in range(0, len(spans), batch):
                assert exporter.export(spans[i : i + batch]).name == "SUCCESS"

        def native_rows() -> None:
            for i in range(0, len(rows), batch):
                baseline_client.insert(
                    "otel_traces",
                    rows[i : i + batch],
                    column_names=list(TRACES_COLUMNS),
                    column_type_names=list(TRACES_INSERT_TYPES),
                    settings=INSERT_SETTINGS,
                )

        def arrow_tables() -> None:
            for table in tables:
                baseline_client.insert_arrow("otel_traces", table, settings=INSERT_SETTINGS)

        # Where the time goes: the same Arrow inserts into an otel_traces with no views at all (the
        # collector table alone: the floor of any insert path), and the span -> Arrow mapping alone.
        def arrow_no_views() -> None:
            for table in tables:
                bare_client.insert_arrow("otel_traces", table, settings=INSERT_SETTINGS)

        def mapping_only() -> None:
            for i in range(0, len(spans), batch):
                spans_to_arrow(spans[i : i + batch])

        runs = {
            "exporter": through_exporter,
            "native": native_rows,
            "arrow": arrow_tables,
            "bare": arrow_no_views,
            "mapping": mapping_only,
        }
        samples: dict[str, list[float]] = {name: [] for name in runs}
        order = list(runs)
        for r in range(rounds):
            for name in order[r % len(order) :] + order[: r % len(order)]:  # rotate the order every round
                start = time.perf_counter()
                runs[name]()
                samples[name].append(len(spans) / (time.perf_counter() - start))
        rate, native, arrow, bare, mapping = (statistics.median(samples[k]) for k in runs)
        rates[batch] = rate
        base_rate = max(native, arrow)
        target = "  (target >= 50,000/s: " + ("met)" if rate >= 50_000 else "NOT met)") if batch == 10_000 else ""
        print(
            f"batch {batch:>6,}: {rate:>9,.0f} decisions/s through the exporter; pre-mapped, insert only: "
            f"{native:>9,.0f}/s Native rows, {arrow:>9,.0f}/s Arrow "
            f"(exporter = {rate / base_rate:.2f}x of the faster insert-only){target}"
        )
        print(
            f"{'':>14} floors: Arrow insert into otel_traces without any view {bare:>9,.0f}/s; "
            f"span -> Arrow mapping alone {mapping:>9,.0f}/s (1/exporter ~ 1/insert + 1/mapping)"
        )
    return rates


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

# One review span for about one decision in ten (approve / override / escalate), written into
# otel_traces like the SDK's review spans, so decision_reviews is fed by its view and both sides of
# subject_decisions pay for the reviews join.
GENERATE_REVIEWS = """
INSERT INTO otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName,
    ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode, StatusMessage)
SELECT
    timestamp + toIntervalMinute(30 + cityHash64(decision_id, 1) % 600),
    trace_id,
    lower(hex(cityHash64(decision_id, 2))),
    '',
    '',
    'decision.review',
    'Internal',
    'bench',
    map('service.name', 'bench', 'telemetry.sdk.language', 'python', 'telemetry.sdk.name', 'opentelemetry'),
    'otel_decisions',
    '0.1.0',
    map(
        'decision.id', decision_id,
        'decision.review.id', toString(generateUUIDv4(cityHash64(decision_id, 3))),
        'decision.review.reviewer.id', concat('reviewer-', toString(cityHash64(decision_id, 4) % 20)),
        'decision.review.action', ['approve', 'approve', 'override', 'escalate'][1 + cityHash64(decision_id, 5) % 4],
        'decision.review.reason', 'checked the file',
        'decision.review.original_outcome', outcome,
        'decision.review.new_outcome', if(cityHash64(decision_id, 5) % 4 = 2, if(outcome = 'approve', 'deny', 'approve'), ''),
        'decision.review.decision_time_unix_nano', toString(toUnixTimestamp64Nano(timestamp)),
        'decision.pseudonym.key_id', 'benchkey00000000'
    ),
    500000,
    'Unset',
    ''
FROM decisions
WHERE cityHash64(decision_id) % 10 = 0
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
    # Same shape as the typed query (the subject's decisions are the join's build side, the review
    # spans the probe side), with the review columns taken from the raw review spans: both sides
    # answer the whole question, reviews included.
    "subject_decisions": """
        SELECT d.decision_id AS decision_id, any(d.ts) AS ts, any(d.type), any(d.outcome) AS outcome, any(d.confidence),
               any(d.rationale), any(d.reasons), any(d.digest), any(d.model), any(d.version), any(d.automation),
               uniqExactIf(r.review_id, r.review_id != ''), argMax(r.action, r.ts), argMax(r.reviewer, r.ts),
               if(argMaxIf(r.new_outcome, r.ts, r.new_outcome != '') AS reviewed != '', reviewed, outcome)
        FROM
        (
            SELECT SpanAttributes['decision.id'] AS decision_id, SpanAttributes['decision.review.id'] AS review_id,
                   Timestamp AS ts, SpanAttributes['decision.review.action'] AS action,
                   SpanAttributes['decision.review.reviewer.id'] AS reviewer, SpanAttributes['decision.review.new_outcome'] AS new_outcome
            FROM otel_traces
            WHERE SpanName = 'decision.review'
        ) AS r
        RIGHT JOIN
        (
            SELECT SpanAttributes['decision.id'] AS decision_id, Timestamp AS ts, SpanAttributes['decision.type'] AS type,
                   SpanAttributes['decision.outcome'] AS outcome, toFloat64OrNull(SpanAttributes['decision.confidence']) AS confidence,
                   SpanAttributes['decision.rationale'] AS rationale,
                   JSONExtract(SpanAttributes['decision.reasons'], 'Array(String)') AS reasons,
                   SpanAttributes['decision.inputs.digest'] AS digest, SpanAttributes['decision.model.name'] AS model,
                   SpanAttributes['decision.model.version'] AS version, SpanAttributes['decision.automation'] AS automation
            FROM otel_traces
            WHERE startsWith(SpanName, 'decision ') AND SpanAttributes['decision.subject.id'] = {subject_id:String}
        ) AS d ON r.decision_id = d.decision_id
        GROUP BY d.decision_id
        ORDER BY ts, decision_id""",
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


def query_latency(label: str, client, n: int, repeat: int) -> dict[str, float]:
    print(f"\n== {label}: query latency over {n:,} decisions (median of {repeat}) ==")
    typed_ms: dict[str, float] = {}
    start = time.perf_counter()
    client.command(GENERATE.replace("{n:UInt64}", str(int(n))))
    print(f"generated {n:,} decision spans in otel_traces (+ decisions via the view) in {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    client.command(GENERATE_REVIEWS)
    print(f"generated {client.command('SELECT count() FROM decision_reviews'):,} review spans in {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    client.command("OPTIMIZE TABLE decisions FINAL")
    client.command("OPTIMIZE TABLE decision_reviews FINAL")
    print(f"OPTIMIZE decisions, decision_reviews FINAL: {time.perf_counter() - start:.1f} s; "
          f"decisions = {client.command('SELECT count() FROM decisions FINAL'):,}")
    # Let the background merges of the generated parts finish: both sides are then timed on a quiet
    # engine (nothing is rewritten or forced, otel_traces keeps the parts the merges leave).
    start = time.perf_counter()
    while client.command("SELECT count() FROM system.merges") and time.perf_counter() - start < 300:
        time.sleep(0.5)
    print(f"waited {time.perf_counter() - start:.1f} s for background merges to finish")
    subject = client.command("SELECT subject_id FROM decisions LIMIT 1")
    overhead, _ = timed(lambda: len(client.query("SELECT 1").result_rows), repeat)
    print(f"per-query floor (SELECT 1 through this client): {overhead * 1e3:.1f} ms")
    params = {
        # one day of adverse-action notices (list query: both sides pay for moving ~4,400 rows)
        "adverse_action_reasons": {"start": "2026-01-12 00:00:00", "end": "2026-01-13 00:00:00"},
        "subject_decisions": {"subject_id": subject},
        "confidence_drift_weekly": {},
        "outcome_rates_by_segment": {},
        "adverse_reason_frequency": {"start": "2026-01-05 00:00:00", "end": "2026-02-02 00:00:00", "adverse_outcomes": "deny,decline"},
    }
    # floor: reading the typed query's finished answer back from a table, i.e. the cost of
    # moving the result into Python alone; map ms / floor ms is the best speed-up any typed query could reach.
    print(f"{'query':<26} {'typed ms':>9} {'map ms':>9} {'speed-up':>9} {'rows':>7} {'floor ms':>9} {'max x':>7}"
          "  targets (>=10x, <200 ms)")
    for name, values in params.items():
        query = get_query(name)
        typed, typed_rows = timed(lambda: len(run_query(client, query, values).rows), repeat)
        typed_ms[name] = typed * 1e3
        map_params = {k: query.param(k).convert(v) for k, v in values.items()}  # type: ignore[union-attr]
        raw, raw_rows = timed(lambda: len(client.query(MAP_QUERIES[name], parameters=map_params).result_rows), repeat)
        bound = query.bind(values)
        client.command(f"DROP TABLE IF EXISTS floor_{name}")
        client.command(f"CREATE TABLE floor_{name} ENGINE = MergeTree ORDER BY tuple() AS {query.sql}", parameters=bound)
        floor, _ = timed(lambda: len(client.query(f"SELECT * FROM floor_{name}").result_rows), repeat)
        ok = ("ok" if raw / typed >= 10 else "below 10x") + ", " + ("ok" if typed < 0.2 else "over 200 ms")
        print(f"{name:<26} {typed * 1e3:>9.1f} {raw * 1e3:>9.1f} {raw / typed:>8.1f}x {typed_rows:>7} {floor * 1e3:>9.1f}"
              f" {raw / floor:>6.1f}x  {ok}" + ("" if typed_rows == raw_rows else f"  (map query returned {raw_rows} rows)"))
    return typed_ms


def _in_process(path: str, database: str):
    """The earlier embedded path: clickhouse-connect's chDB backend, the engine inside this process."""
    import clickhouse_connect

    from otel_decisions.store.client import SESSION_SETTINGS

    bootstrap = clickhouse_connect.get_client(dsn=f"chdb://{path}", settings=SESSION_SETTINGS)
    bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client = clickhouse_connect.get_client(dsn=f"chdb://{path}?database={database}", settings=SESSION_SETTINGS)
    apply_migrations(client)
    return client


def _served(path: str, database: str):
    """The embedded database as served now: ClickHouse's own HTTP listener of the owner process."""
    client = get_client(f"chdb://{path}?database={database}", role="admin")
    apply_migrations(client)
    return client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the insert measurements")
    parser.add_argument("--skip-queries", action="store_true", help="insert rates only")
    args = parser.parse_args()
    served_path = tempfile.mkdtemp(prefix="otel-decisions-bench-served-")
    local_path = tempfile.mkdtemp(prefix="otel-decisions-bench-inprocess-")
    results = {}
    for label, open_db in (("served (HTTP to the owner process)", lambda db: _served(served_path, f"otel_{db}")),
                           ("in-process chDB (before)", lambda db: _in_process(local_path, f"otel_{db}"))):
        client, baseline, bare = open_db("inserts"), open_db("baseline"), open_db("bare")
        for view in ("decisions_mv", "decision_reviews_mv", "otel_traces_trace_id_ts_mv"):
            bare.command(f"DROP VIEW {view}")
        rates = insert_rates(label, client, baseline, bare, args.rounds)
        typed = {} if args.skip_queries else query_latency(label, open_db("queries"), args.decisions, args.repeat)
        results[label] = (rates, typed)
    (served_rates, served_typed), (local_rates, local_typed) = results.values()
    print("\n== served / in-process, this run ==")
    for batch in served_rates:
        print(f"exporter, batch {batch:>6,}: {served_rates[batch]:>9,.0f}/s served vs {local_rates[batch]:>9,.0f}/s "
              f"in-process ({served_rates[batch] / local_rates[batch]:.2f}x)")
    for name in served_typed:
        print(f"{name:<26} {served_typed[name]:>7.1f} ms served vs {local_typed[name]:>7.1f} ms in-process "
              f"({served_typed[name] / local_typed[name]:.2f}x)")
    from otel_decisions.store import embedded

    embedded.stop_server(Path(served_path))
    print(f"\ndata directories: {served_path} {local_path}")


if __name__ == "__main__":
    main()
