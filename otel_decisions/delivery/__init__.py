"""Durable delivery of decision and review spans: an on-disk spool and a shipper.

The SDK's ``BatchSpanProcessor`` drops spans when its queue is full or its exporter is
down; a compliance record cannot be dropped. :class:`DurableSpanProcessor` appends each
decision/review span to a per-process spool (checksummed, append-only segments; group
commit, or ``strict_fsync``) before ``span.end()`` returns; a shipper delivers the spool to
the exporters with retries for as long as it takes and acknowledges only what they
confirmed. One process per spool root ships at a time; it adopts the spools of processes
that died. At the disk quota the policy blocks or fails the recording call, never drops.

Contract used by :func:`otel_decisions.configure`:

- ``build_durable_processor(exporters, settings) -> SpanProcessor`` handles the spans for which
  ``is_durable_span(span, settings)`` is true;
- every other span goes to the SDK's BatchSpanProcessor.

Example::

    from otel_decisions.settings import DecisionSettings
    from otel_decisions.delivery import delivery_status, drain

    settings = DecisionSettings()
    print(delivery_status(settings).pending)
    drain(settings, exporters=build_exporters(settings), timeout_s=60)          # ship what a crashed process left behind
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

from otel_decisions import semconv
from otel_decisions.delivery._processor import DurableSpanProcessor
from otel_decisions.delivery._shipper import Shipper, empty_ledger, empty_progress, pending_in_directory
from otel_decisions.delivery._spool import (
    DRAIN_LOCK,
    LEDGER_FILE,
    PROGRESS_FILE,
    QUARANTINE_DIR,
    STATS_FILE,
    FileLock,
    SpoolQuotaError,
    list_spool_dirs,
    owner_alive,
    read_json,
    spool_usage,
)
from otel_decisions.errors import OtelDecisionsError
from otel_decisions.settings import DecisionSettings

__all__ = [
    "DeliveryStatus",
    "DurableSpanProcessor",
    "SpoolQuotaError",
    "build_durable_processor",
    "delivery_status",
    "drain",
    "is_durable_span",
]

logger = logging.getLogger("otel_decisions.delivery")


def is_durable_span(span: ReadableSpan, settings: DecisionSettings) -> bool:
    """Decision and review spans, spans named in ``settings.durable_span_names``, and flow-run
    spans carrying ``decision.flow.captured`` (the completeness check needs that count)."""
    name = span.name
    if semconv.is_decision_record(name) or name in settings.durable_span_names:
        return True
    attributes = span.attributes
    return bool(attributes) and semconv.DECISION_FLOW_CAPTURED in attributes  # type: ignore[operator]


def build_durable_processor(exporters: Sequence[SpanExporter], settings: DecisionSettings) -> SpanProcessor:
    """The spool-backed processor configure() puts in front of ``exporters``.

    It keeps only the spans :func:`is_durable_span` selects, so it can sit on a provider
    next to a filtered BatchSpanProcessor and see every span.
    """
    return DurableSpanProcessor(exporters, settings, select=is_durable_span)


@dataclass
class SpoolDirStatus:
    """One per-process spool directory."""

    name: str
    alive: bool
    captured: int
    spooled: int
    delivered: int
    pending: int
    quarantined_regions: int
    problems: list[str] = field(default_factory=list)


@dataclass
class DeliveryStatus:
    """Accounting for a spool root, across every process that used it (records, unless said)."""

    spool_dir: str
    captured: int
    spooled: int
    durable: int
    rejected: int
    delivered: int
    pending: int
    retried: int
    quarantined_regions: int
    quarantined_bytes: int
    spool_bytes: int
    quota_bytes: int
    drainer_active: bool
    directories: list[SpoolDirStatus] = field(default_factory=list)
    quarantine_files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def delivery_status(settings: DecisionSettings) -> DeliveryStatus:
    """Read the spool root: counters of live and dead processes, the ledger, and pending records on disk."""
    root = Path(settings.resolved_spool_dir)
    ledger = {**empty_ledger(), **read_json(root / LEDGER_FILE, empty_ledger())}
    totals = {key: ledger[key] for key in ("captured", "spooled", "durable", "rejected", "delivered")}
    quarantined_regions = ledger["quarantined_regions"]
    quarantined_bytes = ledger["quarantined_bytes"]
    pending_total = 0
    directories: list[SpoolDirStatus] = []
    for directory in list_spool_dirs(root):
        if directory.name == ledger.get("folding"):
            continue  # folded into the ledger, removal interrupted
        stats = read_json(directory / STATS_FILE)
        progress = read_json(directory / PROGRESS_FILE, empty_progress())
        pending, problems = pending_in_directory(directory)
        delivered = progress["delivered"]
        # stats.json lags the disk by at most one commit interval (or a kill -9): the disk wins
        spooled = max(stats.get("spooled", 0), delivered + pending)
        captured = max(stats.get("captured", 0), spooled + stats.get("rejected", 0))
        totals["captured"] += captured
        totals["spooled"] += spooled
        totals["durable"] += max(stats.get("durable", 0), delivered)
        totals["rejected"] += stats.get("rejected", 0)
        totals["delivered"] += delivered
        quarantined_regions += progress["quarantined_regions"]
        quarantined_bytes += progress["quarantined_bytes"]
        pending_total += pending
        directories.append(
            SpoolDirStatus(
                name=directory.name,
                alive=owner_alive(directory),
                captured=captured,
                spooled=spooled,
                delivered=delivered,
                pending=pending,
                quarantined_regions=progress["quarantined_regions"],
                problems=problems,
            )
        )
    drainer_active = False
    if root.exists():
        lock = FileLock(root / DRAIN_LOCK)
        if lock.try_acquire():
            lock.release()
        else:
            drainer_active = True
    quarantine = root / QUARANTINE_DIR
    files = sorted(str(p) for p in quarantine.glob("*.json")) if quarantine.exists() else []
    return DeliveryStatus(
        spool_dir=str(root),
        captured=totals["captured"],
        spooled=totals["spooled"],
        durable=totals["durable"],
        rejected=totals["rejected"],
        delivered=totals["delivered"],
        pending=pending_total,
        retried=ledger["retried"],
        quarantined_regions=quarantined_regions,
        quarantined_bytes=quarantined_bytes,
        spool_bytes=spool_usage(root),
        quota_bytes=settings.spool_quota_bytes,
        drainer_active=drainer_active,
        directories=directories,
        quarantine_files=files,
    )


def drain(
    settings: DecisionSettings,
    *,
    exporters: Sequence[SpanExporter],
    timeout_s: float | None = None,
    wait_for_lock_s: float = 5.0,
    own_exporters: bool = False,
) -> DeliveryStatus:
    """Deliver everything pending under the spool root to *exporters* (e.g. after a crash); returns
    the status after. ``own_exporters``: shut them down when done (the CLI builds them for the drain).

    Raises :class:`OtelDecisionsError` if another live process holds the drain lock (it is
    already delivering) or if nothing could be delivered before ``timeout_s``.
    """
    root = Path(settings.resolved_spool_dir)
    if not root.exists():
        return delivery_status(settings)
    owned = own_exporters
    chosen = list(exporters)
    if not chosen:
        raise OtelDecisionsError(
            "exporters: no exporter configured to drain to; set OTEL_DECISIONS_EXPORTERS (e.g. clickhouse or otlp)"
        )
    shipper = Shipper(root, chosen, settings)
    lock_deadline = time.monotonic() + wait_for_lock_s
    while not shipper.drain_lock.try_acquire():
        if time.monotonic() >= lock_deadline:
            raise OtelDecisionsError(
                f"another running process holds {root / DRAIN_LOCK} and is delivering this spool; "
                "wait for it (see `otel-decisions delivery status`) or stop it, then drain again"
            )
        time.sleep(0.1)
    try:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        done = shipper.drain_until_idle(deadline)
    finally:
        shipper.close()
        if owned:
            for exporter in chosen:
                try:
                    exporter.shutdown()
                except Exception:  # noqa: BLE001
                    logger.exception(
                        "otel-decisions delivery: exporter %s failed to shut down", type(exporter).__name__
                    )
    status = delivery_status(settings)
    if not done:
        raise OtelDecisionsError(
            f"delivery drain: {status.pending} record(s) still pending after {timeout_s} s "
            f"({shipper.retried} failed export attempts); they stay in {root}. Check the exporter's "
            "endpoint and run `otel-decisions delivery drain` again"
        )
    return status
