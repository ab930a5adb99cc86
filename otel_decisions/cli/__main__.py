"""``python -m otel_decisions.cli``: the same as the ``otel-decisions`` command."""

from otel_decisions.cli import main

main()
