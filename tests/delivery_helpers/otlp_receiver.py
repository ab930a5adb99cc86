"""A real OTLP/HTTP trace receiver for delivery tests: decodes requests, stores decision ids in SQLite.

It plays the "store": every span's ``decision.id`` (or span id when absent) is inserted in
``spans(decision_id, name)`` — duplicates are kept, so a test can see at-least-once
re-deliveries — and ``GET /stats`` answers ``{"rows": n, "distinct": m, "requests": r}``.
``--delay`` makes every request take that many seconds (a slow endpoint).

Example::

    python -m tests.delivery_helpers.otlp_receiver --port 4318 --db /tmp/store.sqlite --delay 1
"""

from __future__ import annotations

import argparse
import gzip
import json
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from otel_decisions import semconv


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()

    db = sqlite3.connect(args.db, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS spans (decision_id TEXT, name TEXT)")
    lock = threading.Lock()
    requests = [0]
    response = ExportTraceServiceResponse().SerializeToString()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            with lock:
                rows, distinct = db.execute("SELECT count(*), count(DISTINCT decision_id) FROM spans").fetchone()
            body = json.dumps({"rows": rows, "distinct": distinct, "requests": requests[0]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if args.delay:
                time.sleep(args.delay)
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            rows = []
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        key = span.span_id.hex()
                        for attribute in span.attributes:
                            if attribute.key == semconv.DECISION_ID:
                                key = attribute.value.string_value
                                break
                        rows.append((key, span.name))
            with lock:  # one transaction per request: the store commits what one request carried
                db.execute("BEGIN")
                db.executemany("INSERT INTO spans VALUES (?, ?)", rows)
                db.execute("COMMIT")
                requests[0] += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(response)))
            self.end_headers()
            self.wfile.write(response)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
