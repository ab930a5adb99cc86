"""The ``model_approvals`` register: which model version was approved for use, from when, until when.

``unapproved_model_decisions`` (in ``queries/``) lists decisions made outside any approval window.
Rows are keyed on (model_name, model_version, approved_from); a revocation rewrites the open
approval with ``approved_until`` set (ReplacingMergeTree keeps the newest ``updated_at``).

Example::

    from otel_decisions.store.approvals import approve_model, list_approvals
    approve_model(client, "credit-scorer", "2.0", approved_by="model-risk", note="MRM-114")
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from otel_decisions.errors import OtelDecisionsError

__all__ = ["Approval", "approve_model", "revoke_model", "list_approvals"]

_COLUMNS = ["model_name", "model_version", "approved_from", "approved_until", "approved_by", "note"]


@dataclass(frozen=True)
class Approval:
    model_name: str
    model_version: str
    approved_from: datetime
    approved_until: datetime | None
    approved_by: str
    note: str


def as_utc(moment: datetime | None) -> datetime | None:
    """*moment* in UTC; a naive time is taken as UTC (as the CLI's ISO options and the store's columns are)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _require(name: str, value: str) -> None:
    if not value or not value.strip():
        raise OtelDecisionsError(f"{name} must not be empty")


def approve_model(
    client: Any,
    model_name: str,
    model_version: str,
    *,
    approved_by: str,
    approved_from: datetime | None = None,
    approved_until: datetime | None = None,
    note: str = "",
) -> Approval:
    """Record an approval window for a model version (``approved_from`` defaults to now)."""
    _require("model name", model_name)
    _require("model version", model_version)
    _require("approved_by", approved_by)
    start = as_utc(approved_from) or datetime.now(UTC)
    until = as_utc(approved_until)
    if until is not None and until <= start:
        raise OtelDecisionsError(
            f"approved_until ({until.isoformat()}) must be after approved_from ({start.isoformat()})"
        )
    approval = Approval(model_name, model_version, start, until, approved_by, note)
    client.insert(
        "model_approvals",
        [[model_name, model_version, start, until, approved_by, note]],
        column_names=_COLUMNS,
    )
    return approval


def list_approvals(client: Any, model_name: str | None = None) -> list[Approval]:
    """All approvals (latest version of each row), optionally for one model."""
    sql = (
        "SELECT model_name, model_version, approved_from, approved_until, approved_by, note "
        "FROM model_approvals FINAL WHERE {name:String} = '' OR model_name = {name:String} "
        "ORDER BY model_name, model_version, approved_from"
    )
    rows = client.query(sql, parameters={"name": model_name or ""}).result_rows
    return [
        Approval(name, version, as_utc(start), as_utc(until), by, note)  # type: ignore[arg-type]
        for name, version, start, until, by, note in rows
    ]


def revoke_model(client: Any, model_name: str, model_version: str, *, at: datetime | None = None) -> int:
    """End every open approval of the version at *at* (default now); returns how many were ended."""
    when = as_utc(at) or datetime.now(UTC)
    open_ones = [
        a
        for a in list_approvals(client, model_name)
        if a.model_version == model_version
        and (a.approved_until is None or a.approved_until > when)
        and a.approved_from <= when
    ]
    if not open_ones:
        raise OtelDecisionsError(
            f"model {model_name} version {model_version} has no approval open at {when.isoformat()}; "
            "see `otel-decisions models list`"
        )
    client.insert(
        "model_approvals",
        [[a.model_name, a.model_version, a.approved_from, when, a.approved_by, a.note] for a in open_ones],
        column_names=_COLUMNS,
    )
    return len(open_ones)
