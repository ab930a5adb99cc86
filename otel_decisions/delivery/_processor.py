"""``DurableSpanProcessor``: spool on span end, ship in the background, never drop.

Example::

    from opentelemetry.sdk.trace import TracerProvider
    from otel_decisions.settings import DecisionSettings
    from otel_decisions.delivery import DurableSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(DurableSpanProcessor([exporter], DecisionSettings()))
"""

from __future__ import annotations

import logging
import os
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import metrics
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

from otel_decisions import _runtime, semconv
from otel_decisions.delivery._codec import record_payload
from otel_decisions.delivery._shipper import Shipper
from otel_decisions.delivery._spool import SpoolWriter
from otel_decisions.errors import OtelDecisionsError
from otel_decisions.settings import DecisionSettings

logger = logging.getLogger("otel_decisions.delivery")

SHUTDOWN_DELIVERY_TIMEOUT_S = 5.0
"""How long ``shutdown()`` keeps delivering before leaving the rest on disk for the next drain."""

METRIC_PREFIX = "otel_decisions.delivery."


class DurableSpanProcessor(SpanProcessor):
    """Appends every span it is given to an on-disk spool before ``span.end()`` returns.

    A background shipper delivers the spool to ``exporters`` (when this process holds the
    root's drain lock; otherwise the holder delivers it). ``force_flush`` waits for the
    fsync and, within its timeout, for delivery; ``shutdown`` commits, delivers for up to
    ``shutdown_timeout_s`` and leaves the rest on disk for ``otel-decisions delivery drain``.
    """

    def __init__(
        self,
        exporters: Sequence[SpanExporter],
        settings: DecisionSettings,
        *,
        segment_bytes: int | None = None,
        shutdown_timeout_s: float = SHUTDOWN_DELIVERY_TIMEOUT_S,
        ship: bool = True,
        meter_provider: metrics.MeterProvider | None = None,
        select: Callable[[ReadableSpan, DecisionSettings], bool] | None = None,
    ) -> None:
        self.settings = settings
        self._select = select
        self.root = Path(settings.resolved_spool_dir)
        self.exporters = list(exporters)
        self.shutdown_timeout_s = shutdown_timeout_s
        self._ship = ship
        self._segment_bytes = segment_bytes
        self._shut = False
        self._dropped_run_spans = 0
        self._start()
        self._register_metrics(meter_provider)
        ref = weakref.ref(self)

        def after_fork_in_child() -> None:
            processor = ref()
            if processor is not None:
                processor.after_fork_in_child()

        os.register_at_fork(after_in_child=after_fork_in_child)

    def _start(self) -> None:
        self.writer = SpoolWriter(self.root, self.settings, segment_bytes=self._segment_bytes)
        self.shipper = Shipper(self.root, self.exporters, self.settings, self.writer)
        self.writer.on_commit.append(self.shipper.wake)
        if self._ship:
            self.shipper.start()

    def after_fork_in_child(self) -> None:
        """Called in a forked child: its own spool directory and threads (see ``os.register_at_fork``)."""
        if self._shut:
            return
        # Threads do not survive fork: the child gets its own spool directory and threads; the
        # parent's drain lock and directory stay the parent's (our inherited descriptors are
        # closed without unlocking, which would unlock for the parent too).
        self.shipper.drain_lock.forget_after_fork()
        self.writer.after_fork_in_child()
        self.shipper = Shipper(self.root, self.exporters, self.settings, self.writer)
        self.writer.on_commit = [self.shipper.wake]
        if self._ship:
            self.shipper.start()

    # --- SpanProcessor ---------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        """Spool the span. Never raises (see ``otel_decisions._runtime``): a decision record the
        spool refuses is handed to the recording call, which raises it; any other span is logged."""
        # Every selected span is a record to keep: the sampled flag does not drop it.
        if self._select is not None and not self._select(span, self.settings):
            return
        try:
            self.writer.append(span)
        except Exception as exc:  # noqa: BLE001 - the SDK calls on_end from span.end(): never raise there
            if semconv.is_decision_record(span.name):
                _runtime.report_refusal(exc)
            else:
                self._dropped_run_spans += 1
                if self._dropped_run_spans == 1:
                    logger.warning(
                        "otel-decisions delivery: a %r span was not spooled and is dropped: %s", span.name, exc
                    )

    def append_records(
        self, records: Sequence[tuple[Any, ...]], resource: Any, scope: Any
    ) -> tuple[int, OtelDecisionsError | None]:
        """Spool decision records built without an SDK span (:func:`record_payload`'s arguments, in order),
        a block per write. Returns how many were spooled (a prefix) and the refusal that stopped the rest."""
        if self._shut:
            return 0, OtelDecisionsError(
                "the durable span processor is shut down; a decision recorded after shutdown was refused. "
                "Record decisions before the tracer provider shuts down."
            )
        return self.writer.append_payloads([record_payload(*record) for record in records], resource, scope)

    @property
    def shut(self) -> bool:
        return self._shut

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """fsync the spool, then wait (within the timeout) until this process's records are delivered."""
        deadline = time.monotonic() + timeout_millis / 1000.0
        if not self.writer.wait_durable(max(0.0, deadline - time.monotonic())):
            return False
        while time.monotonic() < deadline:
            if self.shipper.own_pending() == 0:
                return True
            self.shipper.wake()
            time.sleep(0.01)
        return self.shipper.own_pending() == 0

    def shutdown(self) -> None:
        """Commit, deliver for a bounded time, leave anything undelivered on disk (logged), never drop."""
        if self._shut:
            return
        self._shut = True
        self.writer.wait_durable(30)
        deadline = time.monotonic() + self.shutdown_timeout_s
        if self._ship:
            self.shipper.stop(deadline)
        pending = self.shipper.own_pending()
        self.writer.close()
        if self._ship and self.shipper.drain_lock.held and pending == 0:
            try:  # our directory is now an exited process's: remove it if fully delivered
                self.shipper.ship_directory(self.writer.directory, own=False)
            except Exception:  # noqa: BLE001 - tidying only
                logger.debug("otel-decisions delivery: could not tidy %s", self.writer.directory, exc_info=True)
        self.shipper.close()
        for exporter in self.exporters:
            try:
                exporter.shutdown()
            except Exception:  # noqa: BLE001 - shutting down must not raise into atexit
                logger.exception("otel-decisions delivery: exporter %s failed to shut down", type(exporter).__name__)
        if pending:
            logger.warning(
                "otel-decisions delivery: %d decision record(s) not yet delivered at shutdown are kept in %s; "
                "they are delivered by the next process that drains this spool or by "
                "`otel-decisions delivery drain`",
                pending,
                self.writer.directory,
            )

    # --- accounting ---------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """This process's counters (records)."""
        writer, shipper = self.writer, self.shipper
        return {
            "captured": writer.captured,
            "spooled": writer.spooled,
            "durable": writer.durable,
            "rejected": writer.rejected,
            "delivered": shipper.delivered,
            "retried": shipper.retried,
            "quarantined": shipper.quarantined_regions,
            "pending": shipper.own_pending(),
        }

    def _register_metrics(self, meter_provider: metrics.MeterProvider | None) -> None:
        meter = metrics.get_meter("otel_decisions.delivery", meter_provider=meter_provider)
        ref = weakref.ref(self)

        def observe(key: str) -> Callable[[CallbackOptions], Iterable[Observation]]:  # one callback per instrument
            def callback(options: CallbackOptions) -> Iterable[Observation]:
                processor = ref()
                if processor is None:
                    return []
                return [Observation(processor.counts()[key])]

            return callback

        descriptions = {
            "captured": "Durable spans handed to the spool (recording calls).",
            "spooled": "Durable spans written to the spool before the recording call returned.",
            "durable": "Durable spans fsync'd to disk.",
            "rejected": "Recording calls refused by the quota policy (raised to the caller, never silent).",
            "delivered": "Spans this process delivered to every exporter.",
            "retried": "Failed export attempts that were retried.",
            "quarantined": "Corrupt or torn spool regions quarantined.",
        }
        for key, description in descriptions.items():
            meter.create_observable_counter(
                METRIC_PREFIX + key, callbacks=[observe(key)], unit="{span}", description=description
            )
        meter.create_observable_gauge(
            METRIC_PREFIX + "pending",
            callbacks=[observe("pending")],
            unit="{span}",
            description="Spans this process recorded that are not delivered yet.",
        )
