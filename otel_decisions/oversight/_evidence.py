"""The evidence report for any data: one period, one flow run, or everything, written and access-logged.

Example::

    from otel_decisions.oversight import write_evidence_report
    write_evidence_report(client, "run.html", flow_run_id="0f5c...", database="chdb:///var/lib/decisions")
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from otel_decisions.errors import OtelDecisionsError
from otel_decisions.lifecycle import log_access
from otel_decisions.output.report import DEFAULT_TITLE, ReportData, collect_report_data, save_report

__all__ = ["check_flow_run_id", "check_period", "write_evidence_report"]

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def check_flow_run_id(value: str | None, field: str = "flow_run_id") -> str | None:
    """*value* as a Prefect flow run id (a UUID, lower case), or None; a clear error otherwise."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if not _UUID.match(text):
        raise OtelDecisionsError(
            f"{field} {value!r}: a Prefect flow run id is a UUID such as 0f5c2d6e-1b7a-4c59-9a0e-6f1d2b3c4d5e "
            "(the id on the flow run's page, or in `prefect flow-run ls`)"
        )
    return text


def check_period(start: datetime | None, end: datetime | None) -> None:
    """A clear error when the period is empty."""
    if start is not None and end is not None and end <= start:
        raise OtelDecisionsError(
            f"until (--until) {end.isoformat()} is not after since (--since) {start.isoformat()}: widen the period"
        )


def write_evidence_report(
    client: Any,
    path: Path | str,
    *,
    title: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    flow_run_id: str | None = None,
    database: str | None = None,
    sink: Any = None,
) -> ReportData:
    """Write the self-contained HTML evidence report for decisions in [*start*, *end*) (default: all), for
    one Prefect flow run's decisions only when *flow_run_id* is given, and log the read to ``access_log``
    (*sink* writes the row when *client* may not). Returns what the report shows."""
    run_id = check_flow_run_id(flow_run_id)
    check_period(start, end)
    heading = title or (f"Decision evidence: flow run {run_id}" if run_id else DEFAULT_TITLE)
    data = collect_report_data(client, title=heading, start=start, end=end, database=database, flow_run_id=run_id)
    target = save_report(data, path)
    parameters: dict[str, Any] = {"path": str(target)}
    if run_id:
        parameters["flow_run_id"] = run_id
    if start is not None:
        parameters["since"] = start.isoformat()
    if end is not None:
        parameters["until"] = end.isoformat()
    shown = [row[data.adverse_columns.index("decision_id")] for row in data.adverse_rows]
    if data.flow_run_rows:
        index = data.flow_run_columns.index("decision_id")
        shown += [row[index] for row in data.flow_run_rows]
    log_access(
        client,
        command="report",
        parameters=parameters,
        columns=data.adverse_columns,
        rows=data.adverse_rows,
        decision_ids=sorted(set(shown)),
        row_count=int(data.summary.get("decisions") or 0),
        export_format="html",
        sink=sink,
    )
    return data
