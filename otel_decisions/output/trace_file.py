"""Export one trace from ClickHouse ``otel_traces`` as a file Jaeger (or any OTLP tool) can load.

Two formats:

- ``otlp-json``: the OTLP/JSON encoding of an ``ExportTraceServiceRequest`` (protobuf JSON
  mapping: hex trace/span ids, enums as integers, 64-bit integers as strings). POST it to any
  OTLP/HTTP receiver, Jaeger v2's included (``/v1/traces``, ``Content-Type: application/json``).
- ``jaeger-json``: Jaeger's UI/query JSON (``{"data": [{"traceID", "spans", "processes"}]}``),
  the shape ``/api/traces/{id}`` returns and the Jaeger UI's "JSON File" upload reads.

``otel_traces`` keeps every attribute as text (``pcommon.Value.AsString``); the types of the
keys otel-decisions defines (:data:`semconv.DECISION_ATTRIBUTES`, :data:`semconv.REVIEW_ATTRIBUTES`)
are restored (``decision.confidence`` as a double, ``decision.reasons`` as a string array, ...);
every other attribute is exported as a string.

Example::

    from otel_decisions.output.trace_file import export_trace
    document = export_trace("4bf92f3577b34da6a3ce929d0e0e4736", fmt="otlp-json", dsn="chdb:///tmp/db")
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from otel_decisions import semconv
from otel_decisions.errors import OtelDecisionsError
from otel_decisions.store.mapping import TRACES_COLUMNS

__all__ = ["ExportFormat", "SpanRecord", "read_trace", "to_otlp_json", "to_jaeger_json", "export_trace"]

ExportFormat = Literal["otlp-json", "jaeger-json"]
FORMATS: tuple[str, ...] = ("otlp-json", "jaeger-json")

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")

# Types of the keys we define; everything else stays a string.
_ATTRIBUTE_TYPES: dict[str, str] = {
    **{key: spec[0] for key, spec in semconv.REVIEW_ATTRIBUTES.items()},
    **{key: spec[0] for key, spec in semconv.DECISION_ATTRIBUTES.items()},
}

# ptrace span kind / status strings (as the clickhouse exporter writes them) -> OTLP enum values.
_OTLP_KIND = {"Unspecified": 0, "Internal": 1, "Server": 2, "Client": 3, "Producer": 4, "Consumer": 5}
_OTLP_STATUS = {"Unset": 0, "Ok": 1, "Error": 2}
# Jaeger's OTLP translator: span.kind tag values and otel.status_code values.
_JAEGER_KIND = {
    "Internal": "internal",
    "Server": "server",
    "Client": "client",
    "Producer": "producer",
    "Consumer": "consumer",
}
_JAEGER_STATUS = {"Ok": "OK", "Error": "ERROR"}

# otel_traces' columns, with the two timestamp columns read as integer nanoseconds.
_COLUMNS = tuple(
    {
        "Timestamp": "toUnixTimestamp64Nano(Timestamp)",
        "Events.Timestamp": "arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp)",
    }.get(column, column)
    for column in TRACES_COLUMNS
)


@dataclass(frozen=True)
class SpanRecord:
    """One ``otel_traces`` row, as read back (times in ns since the epoch, ids in hex)."""

    start_ns: int
    trace_id: str
    span_id: str
    parent_span_id: str
    trace_state: str
    name: str
    kind: str
    service_name: str
    resource_attributes: dict[str, str]
    scope_name: str
    scope_version: str
    attributes: dict[str, str]
    duration_ns: int
    status_code: str
    status_message: str
    events: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)
    links: list[tuple[str, str, str, dict[str, str]]] = field(default_factory=list)

    @property
    def end_ns(self) -> int:
        return self.start_ns + self.duration_ns


def _normalise_trace_id(trace_id: str) -> str:
    tid = trace_id.strip().lower().replace("-", "")
    if tid.startswith("0x"):
        tid = tid[2:]
    if not _TRACE_ID.match(tid):
        raise OtelDecisionsError(
            f"trace id {trace_id!r} is not 32 hexadecimal characters; copy it from Jaeger, "
            "from a decision's trace_id, or from otel_traces.TraceId"
        )
    return tid


def read_trace(client: Any, trace_id: str, *, table: str = "otel_traces") -> list[SpanRecord]:
    """Every span of *trace_id* in *table* (via a clickhouse-connect *client*), oldest first.

    Duplicate rows of one span (re-delivery) are collapsed to one.
    """
    tid = _normalise_trace_id(trace_id)
    sql = f"SELECT {', '.join(_COLUMNS)} FROM {table} WHERE TraceId = {{tid:String}} ORDER BY Timestamp, SpanId"
    try:
        rows = client.query(sql, parameters={"tid": tid}).result_rows
    except Exception as exc:  # noqa: BLE001 - any driver error becomes one user-facing message
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OtelDecisionsError(
            f"cannot read {table}: {first}. Apply the schema first (`otel-decisions schema apply`) "
            "or check --dsn points at the database that holds the traces"
        ) from exc
    records: list[SpanRecord] = []
    seen: set[str] = set()
    for row in rows:
        if row[2] in seen:
            continue
        seen.add(row[2])
        events = [(int(ts), name, dict(attrs)) for ts, name, attrs in zip(row[15], row[16], row[17], strict=False)]
        links = [(t, s, st, dict(a)) for t, s, st, a in zip(row[18], row[19], row[20], row[21], strict=False)]
        records.append(
            SpanRecord(
                start_ns=int(row[0]),
                trace_id=row[1],
                span_id=row[2],
                parent_span_id=row[3],
                trace_state=row[4],
                name=row[5],
                kind=row[6],
                service_name=row[7],
                resource_attributes=dict(row[8]),
                scope_name=row[9],
                scope_version=row[10],
                attributes=dict(row[11]),
                duration_ns=int(row[12]),
                status_code=row[13],
                status_message=row[14],
                events=events,
                links=links,
            )
        )
    return records


# --- typed values ----------------------------------------------------------------------------


def typed_value(key: str, text: str) -> bool | int | float | list[str] | str:
    """The typed value of an attribute stored as text: restored for keys we define, else *text*."""
    kind = _ATTRIBUTE_TYPES.get(key)
    try:
        if kind == "double":
            return float(text)
        if kind == "int":
            return int(text)
        if kind == "bool" and text in ("true", "false"):
            return text == "true"
        if kind == "string[]":
            value = json.loads(text)
            if isinstance(value, list) and all(isinstance(item, str) for item in value):
                return value
    except ValueError:
        pass
    return text


def _otlp_any(value: bool | int | float | list[str] | str) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [{"stringValue": item} for item in value]}}
    return {"stringValue": value}


def _otlp_attributes(attributes: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"key": key, "value": _otlp_any(typed_value(key, text))} for key, text in attributes.items()]


def _jaeger_tag(key: str, value: bool | int | float | list[str] | str) -> dict[str, Any]:
    # Jaeger's OTLP translator: slices become their JSON text in a string tag.
    if isinstance(value, bool):
        return {"key": key, "type": "bool", "value": value}
    if isinstance(value, int):
        return {"key": key, "type": "int64", "value": value}
    if isinstance(value, float):
        return {"key": key, "type": "float64", "value": value}
    if isinstance(value, list):
        return {"key": key, "type": "string", "value": json.dumps(value, separators=(",", ":"), ensure_ascii=False)}
    return {"key": key, "type": "string", "value": value}


def _jaeger_tags(attributes: Mapping[str, str]) -> list[dict[str, Any]]:
    return [_jaeger_tag(key, typed_value(key, text)) for key, text in attributes.items()]


# --- formats ----------------------------------------------------------------------------------


def to_otlp_json(spans: Sequence[SpanRecord]) -> dict[str, Any]:
    """An OTLP/JSON ``ExportTraceServiceRequest`` holding *spans*, grouped by resource and scope."""
    resources: dict[tuple[tuple[str, str], ...], dict[tuple[str, str], list[dict[str, Any]]]] = {}
    resource_attrs: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    for span in spans:
        rkey = tuple(sorted(span.resource_attributes.items()))
        resource_attrs.setdefault(rkey, span.resource_attributes)
        scopes = resources.setdefault(rkey, {})
        otlp: dict[str, Any] = {
            "traceId": span.trace_id,
            "spanId": span.span_id,
            "name": span.name,
            "kind": _OTLP_KIND.get(span.kind, 0),
            "startTimeUnixNano": str(span.start_ns),
            "endTimeUnixNano": str(span.end_ns),
            "attributes": _otlp_attributes(span.attributes),
            "status": {"code": _OTLP_STATUS.get(span.status_code, 0)},
        }
        if span.parent_span_id:
            otlp["parentSpanId"] = span.parent_span_id
        if span.trace_state:
            otlp["traceState"] = span.trace_state
        if span.status_message:
            otlp["status"]["message"] = span.status_message
        if span.events:
            otlp["events"] = [
                {"timeUnixNano": str(ts), "name": name, "attributes": _otlp_attributes(attrs)}
                for ts, name, attrs in span.events
            ]
        if span.links:
            otlp["links"] = [
                {"traceId": t, "spanId": s, **({"traceState": st} if st else {}), "attributes": _otlp_attributes(a)}
                for t, s, st, a in span.links
            ]
        scopes.setdefault((span.scope_name, span.scope_version), []).append(otlp)
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": _otlp_attributes(resource_attrs[rkey])},
                "scopeSpans": [
                    {"scope": {"name": name, **({"version": version} if version else {})}, "spans": otlp_spans}
                    for (name, version), otlp_spans in scopes.items()
                ],
            }
            for rkey, scopes in resources.items()
        ]
    }


def to_jaeger_json(spans: Sequence[SpanRecord]) -> dict[str, Any]:
    """Jaeger's UI JSON (``{"data": [trace]}``) for *spans* of one trace, tags as Jaeger's translator makes them."""
    processes: dict[tuple[tuple[str, str], ...], str] = {}
    process_json: dict[str, Any] = {}
    jaeger_spans: list[dict[str, Any]] = []
    for span in spans:
        rkey = tuple(sorted(span.resource_attributes.items()))
        pid = processes.get(rkey)
        if pid is None:
            pid = processes[rkey] = f"p{len(processes) + 1}"
            others = {k: v for k, v in span.resource_attributes.items() if k != semconv.SERVICE_NAME}
            process_json[pid] = {"serviceName": span.service_name, "tags": _jaeger_tags(others)}
        tags = _jaeger_tags(span.attributes)
        if span.scope_name:
            tags.append({"key": "otel.scope.name", "type": "string", "value": span.scope_name})
        if span.scope_version:
            tags.append({"key": "otel.scope.version", "type": "string", "value": span.scope_version})
        if span.kind in _JAEGER_KIND:
            tags.append({"key": "span.kind", "type": "string", "value": _JAEGER_KIND[span.kind]})
        if span.status_code in _JAEGER_STATUS:
            tags.append({"key": "otel.status_code", "type": "string", "value": _JAEGER_STATUS[span.status_code]})
        if span.status_code == "Error":
            tags.append({"key": "error", "type": "bool", "value": True})
        if span.status_message:
            tags.append({"key": "otel.status_description", "type": "string", "value": span.status_message})
        if span.trace_state:
            tags.append({"key": "w3c.tracestate", "type": "string", "value": span.trace_state})
        references = []
        if span.parent_span_id:
            references.append({"refType": "CHILD_OF", "traceID": span.trace_id, "spanID": span.parent_span_id})
        references.extend({"refType": "FOLLOWS_FROM", "traceID": t, "spanID": s} for t, s, _st, _a in span.links)
        jaeger_spans.append(
            {
                "traceID": span.trace_id,
                "spanID": span.span_id,
                "operationName": span.name,
                "references": references,
                "flags": 1,
                "startTime": span.start_ns // 1000,
                "duration": span.duration_ns // 1000,
                "tags": tags,
                "logs": [
                    {
                        "timestamp": ts // 1000,
                        "fields": [{"key": "event", "type": "string", "value": name}, *_jaeger_tags(attrs)],
                    }
                    for ts, name, attrs in span.events
                ],
                "processID": pid,
                "warnings": None,
            }
        )
    trace_id = spans[0].trace_id if spans else ""
    return {
        "data": [{"traceID": trace_id, "spans": jaeger_spans, "processes": process_json, "warnings": None}],
        "total": 0,
        "limit": 0,
        "offset": 0,
        "errors": None,
    }


def export_trace(
    trace_id: str, *, fmt: ExportFormat = "otlp-json", dsn: str | None = None, client: Any = None
) -> dict[str, Any]:
    """Read *trace_id* from ClickHouse (*client*, else one for *dsn*, else the configured DSN) in *fmt*."""
    if fmt not in FORMATS:
        raise OtelDecisionsError(f"--format {fmt!r} is not supported; use one of: {', '.join(FORMATS)}")
    tid = _normalise_trace_id(trace_id)
    if client is None:
        from otel_decisions.store.client import get_client

        client = get_client(dsn, role="reader")
    spans = read_trace(client, tid)
    if not spans:
        from otel_decisions.store.client import redact_dsn

        where = redact_dsn(dsn) if dsn else "the configured database"
        raise OtelDecisionsError(
            f"no spans of trace {tid} in otel_traces of {where}; check the trace id and --dsn "
            "(spans still waiting in an application's delivery spool are not there yet)"
        )
    return to_otlp_json(spans) if fmt == "otlp-json" else to_jaeger_json(spans)
