"""Process state set by ``sdk.configure()`` and read by the layers below it.

Holds the current :class:`Runtime` (settings, compiled privacy policy, tracer) and the refusal
channel between the durable span processor and the recording call.

The refusal channel is the contract for a record the store cannot keep (spool quota reached,
disk error): a span processor never raises out of ``on_end`` (the SDK calls every processor in
turn, and a raise would skip the ones after it and escape into whatever ended the span, e.g.
Prefect's engine). Instead the durable processor hands the error to :func:`report_refusal`;
the recording call (``record_decision``, ``record_review``, a checkpoint) ends its span in the
same thread, then calls :func:`take_refusal` and raises it to its caller. A task that records
explicitly sees the error; auto-capture logs it; a Prefect run span is never refused loudly.

Example::

    from otel_decisions import _runtime

    span.end()
    refusal = _runtime.take_refusal()
    if refusal is not None:
        raise refusal
"""

from __future__ import annotations

import threading

_refusals = threading.local()


def report_refusal(error: Exception) -> None:
    """Called by a span processor in ``on_end``: the record being ended was not kept."""
    _refusals.error = error


def take_refusal() -> Exception | None:
    """The refusal reported in this thread since the last call, if any (and forget it)."""
    error: Exception | None = getattr(_refusals, "error", None)
    if error is not None:
        _refusals.error = None
    return error
