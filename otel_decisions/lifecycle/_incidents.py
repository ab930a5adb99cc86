"""The incident register (EU AI Act Art. 72/73): a model version's problem, open from when until when.

``score_drift_incidents`` lists, per model version and week, the score drift and the decisions made
while an incident on that version was open.

Example::

    from otel_decisions.lifecycle import open_incident, close_incident
    incident = open_incident(client, "score shift after bureau feed change", "credit-scorer", "2.0", actor="mrm")
    close_incident(client, incident, actor="mrm")
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from otel_decisions.errors import OtelDecisionsError
from otel_decisions.store.approvals import as_utc

__all__ = ["open_incident", "close_incident"]

_COLUMNS = ["incident_id", "title", "model_name", "model_version", "opened_at", "closed_at", "reference", "opened_by"]


def open_incident(
    client: Any,
    title: str,
    model_name: str,
    model_version: str = "",
    *,
    actor: str,
    reference: str = "",
    opened_at: datetime | None = None,
) -> str:
    """Open an incident on a model (every version if *model_version* is empty); returns its id."""
    for name, value in (("--title", title), ("--model", model_name), ("--by", actor)):
        if not value or not value.strip():
            raise OtelDecisionsError(f"{name}: required (it is recorded with the incident)")
    incident_id = str(uuid.uuid4())
    start = as_utc(opened_at) or datetime.now(UTC)
    client.insert(
        "incidents",
        [[incident_id, title, model_name, model_version, start, None, reference, actor]],
        column_names=_COLUMNS,
    )
    return incident_id


def close_incident(client: Any, incident_id: str, *, actor: str, closed_at: datetime | None = None) -> None:
    """Close an open incident at *closed_at* (default now)."""
    rows = client.query(
        "SELECT incident_id, title, model_name, model_version, opened_at, reference, opened_by FROM incidents FINAL "
        "WHERE incident_id = {i:String} AND closed_at IS NULL",
        parameters={"i": incident_id},
    ).result_rows
    if not rows:
        raise OtelDecisionsError(
            f"no open incident {incident_id!r}; see `otel-decisions query run score_drift_incidents`"
        )
    if not actor or not actor.strip():
        raise OtelDecisionsError("--by: required (it is recorded with the incident)")
    iid, title, model_name, version, opened, reference, opened_by = rows[0]
    end = as_utc(closed_at) or datetime.now(UTC)
    client.insert(
        "incidents",
        [[iid, title, model_name, version, opened, end, reference, opened_by]],
        column_names=_COLUMNS,
    )
