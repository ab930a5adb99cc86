"""Access audit: who read which decision records, when (HIPAA 164.312(b)).

Two feeds write ``access_log``: every otel-decisions command that reads or exports decision data
(``query run``, ``report``, ``export-trace``) logs one row (source ``otel-decisions``: the database
user, the OS user, the query and its parameters, the subjects asked about, rows returned and how
many of them are PHI-flagged), and the database's own query log feeds raw SQL reads of the decision
tables (source ``query_log``, see :mod:`otel_decisions.store.audit`), which no client can skip.

Example::

    from otel_decisions.lifecycle import log_access
    log_access(client, command="query run", query_name="subject_decisions", parameters={"subject_id": p},
               columns=result.columns, rows=result.rows)
"""

from __future__ import annotations

import getpass
import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from otel_decisions.lifecycle._sql import PHI_SQL

__all__ = ["log_access", "phi_count"]

logger = logging.getLogger("otel_decisions")
_SUBJECT_KEYS = ("subject_id", "subject")


def phi_count(client: Any, decision_ids: Sequence[str]) -> int:
    """How many of *decision_ids* are PHI-flagged decisions."""
    ids = sorted({str(i) for i in decision_ids if i})
    total = 0
    for start in range(0, len(ids), 1000):  # an HTTP form field holds about 100 KB
        total += int(
            client.query(
                f"SELECT uniqExact(decision_id) FROM decisions WHERE has({{ids:Array(String)}}, decision_id) AND {PHI_SQL}",
                parameters={"ids": ids[start : start + 1000]},
            ).result_rows[0][0]
        )
    return total


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in a container
        return f"uid {os.getuid()}"


def log_access(
    client: Any,
    *,
    command: str,
    query_name: str = "",
    parameters: Mapping[str, Any] | None = None,
    columns: Sequence[str] = (),
    rows: Sequence[Sequence[Any]] = (),
    export_format: str = "",
    decision_ids: Sequence[str] | None = None,
    row_count: int | None = None,
    sink: Any = None,
) -> bool:
    """Log one read of decision data made through *client*. Never raises: a read that cannot be logged is
    warned about (the database's own query log still has it). Returns whether the row was written.

    *sink*: the client that writes the row when the reading one may not (the embedded database's reader
    role is read-only; on a server the reader role may insert into ``access_log``)."""
    try:
        params = dict(parameters or {})
        subjects = sorted({str(params[k]) for k in _SUBJECT_KEYS if params.get(k)})
        if "subject_id" in columns:
            index = list(columns).index("subject_id")
            subjects = sorted({*subjects, *(str(r[index]) for r in rows if r[index])})
        ids = list(decision_ids or [])
        if not ids and "decision_id" in columns:
            index = list(columns).index("decision_id")
            ids = [str(r[index]) for r in rows]
        user = str(client.command("SELECT currentUser()"))
        (sink or client).insert(
            "access_log",
            [
                [
                    "otel-decisions",
                    user,
                    _os_user(),
                    command,
                    query_name,
                    json.dumps(params, sort_keys=True, default=str),
                    subjects,
                    [],
                    len(rows) if row_count is None else row_count,
                    phi_count(client, ids),
                    export_format,
                    "",
                ]
            ],
            column_names=[
                "source",
                "db_user",
                "os_user",
                "command",
                "query_name",
                "parameters",
                "subject_ids",
                "tables",
                "rows",
                "phi_rows",
                "export_format",
                "query_id",
            ],
        )
        return True
    except Exception as exc:  # noqa: BLE001 - the read itself succeeded; say the log did not
        logger.warning(
            "otel-decisions: this read was not written to access_log (%s); the database's query log still records it",
            exc,
        )
        return False
