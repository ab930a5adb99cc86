"""The ``otel-decisions`` command: a thin typer layer over the package's modules.

Each command group lives in its own module; this one only assembles them and turns
:class:`otel_decisions.errors.OtelDecisionsError` into a message and its exit code (2 bad input or
settings, 3 no decision store at the DSN, 4 the store refused or is unreachable; 1 is kept for
findings: tampering found by ``verify``, unaccounted task runs found by ``reconcile``).

Example::

    $ otel-decisions query list
"""

from __future__ import annotations

import typer

from otel_decisions.cli import (
    _delivery,
    _demo,
    _integrity,
    _lifecycle,
    _privacy,
    _reconcile,
    _report,
    _serve,
    _storage,
    _trace,
)

app = typer.Typer(
    name="otel-decisions",
    help="Decision-level compliance records for AI workflows on Prefect.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

_storage.register(app)
_delivery.register(app)
_demo.register(app)
_serve.register(app)
_trace.register(app)
_integrity.register(app)
_privacy.register(app)
_reconcile.register(app)
_lifecycle.register(app)
_report.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
