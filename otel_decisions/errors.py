"""The one exception type the CLI turns into a message and exit code 2."""

from __future__ import annotations


class OtelDecisionsError(Exception):
    """A user-facing error: its message says what is wrong and how to fix it."""

    exit_code: int = 2
