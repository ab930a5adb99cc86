"""The Prefect plugin (entry point group ``prefect.plugins``): every Prefect process records.

With ``PREFECT_PLUGINS_ENABLED=true``, ``import prefect`` calls :func:`setup_environment` in every
process that imports it: ``python flow.py``, ``flow.serve()`` and its flow runs, a worker and its
``python -m prefect.engine`` flow-run subprocesses, process-pool and Dask workers. The hook runs
:func:`otel_decisions.configure` from ``OTEL_DECISIONS_*`` / ``OTEL_*`` and instruments Prefect, so
setup written under ``if __name__ == "__main__":`` (which those processes never run) is not needed.
Prefect's own server processes (``prefect server start`` and its API) are left alone. A plugin that
fails logs and returns: it never breaks ``import prefect``.

Example::

    $ pip install otel-decisions
    $ PREFECT_PLUGINS_ENABLED=true prefect worker start --pool my-pool
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from prefect._internal.plugins.manager import register_hook

from otel_decisions.instrumentation._workers import plugin_switched_off

PREFECT_PLUGIN_API_REQUIRES = ">=0.1,<1"
"""The Prefect plugin API versions this hook was written and tested against."""


logger = logging.getLogger("otel_decisions.plugin")

_SERVER_MARKERS = ("prefect.server.api.server:create_app", "prefect.server.api.server")


def is_prefect_server_process(argv: list[str] | None = None) -> bool:
    """Whether this process is Prefect's own server (``prefect server start`` or its uvicorn API)."""
    args = sys.argv if argv is None else argv
    if any(marker in arg for arg in args for marker in _SERVER_MARKERS):
        return True
    words = [os.path.basename(arg) for arg in args[:4]]
    return (
        "server" in words
        and "start" in words
        and any(w in ("prefect", "prefect.exe") or w.endswith("prefect") for w in words)
    )


@register_hook
def setup_environment(*, ctx: Any) -> Any:
    """Configure otel-decisions and instrument Prefect in this process (skipped in Prefect's server)."""
    from prefect._internal.plugins.spec import SetupResult

    if plugin_switched_off():
        return None
    if is_prefect_server_process():
        return None
    try:
        from otel_decisions.instrumentation import PrefectInstrumentor
        from otel_decisions.sdk._configure import configure

        settings = configure()
        instrumentor = PrefectInstrumentor()
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()
    except Exception as exc:  # noqa: BLE001 - a plugin must never break `import prefect`
        logger.warning("otel-decisions: the Prefect plugin could not set up recording in this process: %s", exc)
        return None
    return SetupResult(env={}, note=f"otel-decisions recording to {', '.join(settings.exporters)}")
