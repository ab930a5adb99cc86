"""Prefect auto-instrumentation: :class:`PrefectInstrumentor` (patches only; recording is ``capture``'s).

Example::

    from otel_decisions.instrumentation import PrefectInstrumentor

    PrefectInstrumentor().instrument()
"""

from otel_decisions.instrumentation._prefect import PrefectInstrumentor

__all__ = ["PrefectInstrumentor"]
