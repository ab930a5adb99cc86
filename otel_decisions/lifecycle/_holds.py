"""Legal holds: records that must be kept whatever their retention date (litigation, investigation, audit).

A hold covers a data subject, a flow run, a decision type, or a list of decisions (for example a
catalogue query's result). Holds are records too: placing and releasing each write a row to
``legal_holds`` (who, when, why, the case reference), nothing is updated or deleted, so the history
survives restarts and is itself evidence. ``active_legal_holds`` is the view of holds not released.

Example::

    from otel_decisions.lifecycle import place_hold, release_hold
    hold = place_hold(client, "subject", [pseudonym], reason="CFPB inquiry", reference="CFPB-2026-17", actor="legal")
    release_hold(client, hold.hold_id, actor="legal", reason="inquiry closed")
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from otel_decisions.errors import OtelDecisionsError
from otel_decisions.store.errors import store_error

__all__ = ["SCOPES", "Hold", "place_hold", "release_hold", "active_holds", "hold_history"]

SCOPES = ("subject", "flow_run", "decision_type", "decision")
_COLUMNS = ["hold_id", "action", "scope", "target", "reason", "reference", "actor", "source"]


@dataclass(frozen=True)
class Hold:
    hold_id: str
    scope: str
    target: str
    reason: str
    reference: str
    actor: str
    source: str
    at: datetime


def _need(name: str, value: str) -> None:
    if not value or not str(value).strip():
        raise OtelDecisionsError(f"{name}: required (it is recorded with the hold)")


def place_hold(
    client: Any,
    scope: str,
    targets: Sequence[str],
    *,
    reason: str,
    reference: str,
    actor: str,
    source: str = "",
) -> Hold:
    """Place one hold on *targets* of *scope* (see :data:`SCOPES`); returns it (``hold_id`` to release it)."""
    if scope not in SCOPES:
        raise OtelDecisionsError(f"hold scope {scope!r} is not one of {', '.join(SCOPES)}")
    _need("--reason", reason)
    _need("--reference", reference)
    _need("--by", actor)
    chosen = sorted({str(t).strip() for t in targets if str(t).strip()})
    if not chosen:
        raise OtelDecisionsError(f"the hold covers no {scope}: give at least one (a query with no rows holds nothing)")
    _check_targets(client, scope, chosen)
    hold_id = str(uuid.uuid4())
    try:
        client.insert(
            "legal_holds",
            [[hold_id, "place", scope, target, reason, reference, actor, source] for target in chosen],
            column_names=_COLUMNS,
        )
    except Exception as exc:
        raise store_error(exc, "hold add") from exc
    return Hold(
        hold_id,
        scope,
        ",".join(chosen) if len(chosen) <= 3 else f"{len(chosen)} {scope}s",
        reason,
        reference,
        actor,
        source,
        datetime.now(),
    )


_PSEUDONYM = re.compile(r"^[0-9a-f]{64}$")
_COLUMN = {
    "subject": "subject_id",
    "flow_run": "flow_run_id",
    "decision_type": "decision_type",
    "decision": "decision_id",
}


def check_subject(subject_id: str, option: str = "--subject") -> None:
    """A subject is named by its pseudonym: a raw identifier would match nothing and hold or erase nothing."""
    if not _PSEUDONYM.match(subject_id):
        raise OtelDecisionsError(
            f"{option} {subject_id[:12]!r}...: not a pseudonymised subject id (64 hex digits); decisions store the "
            "pseudonym, so pass $(otel-decisions pseudonymise RAW_ID)"
        )


def _check_targets(client: Any, scope: str, targets: list[str]) -> None:
    """Every target names stored decisions (a mistyped id would hold nothing, silently)."""
    if scope == "subject":
        for target in targets:
            check_subject(target)
        return
    column = _COLUMN[scope]
    try:
        rows = client.query(
            f"SELECT DISTINCT {column} FROM decisions WHERE has({{t:Array(String)}}, {column})",
            parameters={"t": targets[:1000]},
        ).result_rows
        found = {row[0] for row in rows}
    except Exception as exc:
        raise store_error(exc, "hold add") from exc
    missing = [t for t in targets[:1000] if t not in found]
    if missing:
        raise OtelDecisionsError(
            f"no stored decision has {column} {', '.join(repr(m) for m in missing[:3])}"
            f"{' and more' if len(missing) > 3 else ''}: check the value (see `otel-decisions query run decision_detail`)"
        )


def active_holds(client: Any) -> list[Hold]:
    """Every hold placed and not released, one entry per target."""
    try:
        rows = client.query(
            "SELECT hold_id, scope, target, reason, reference, actor, source, at FROM active_legal_holds "
            "ORDER BY at, hold_id, target"
        ).result_rows
    except Exception as exc:
        raise store_error(exc, "hold list") from exc
    return [Hold(*row) for row in rows]


def hold_history(client: Any) -> list[tuple[Any, ...]]:
    """Every placement and release: (at, hold_id, action, scope, targets, reason, reference, actor)."""
    try:
        return list(
            client.query(
                "SELECT min(at), hold_id, action, any(scope), count(), any(reason), any(reference), any(actor) "
                "FROM legal_holds GROUP BY hold_id, action ORDER BY 1, hold_id"
            ).result_rows
        )
    except Exception as exc:
        raise store_error(exc, "hold list") from exc


def release_hold(client: Any, hold_id: str, *, actor: str, reason: str) -> int:
    """Release a hold (a new row; the placement stays on record). Returns how many targets it covered."""
    _need("--by", actor)
    _need("--reason", reason)
    try:
        rows = client.query(
            "SELECT scope, target, reference FROM active_legal_holds WHERE hold_id = {h:String}",
            parameters={"h": hold_id},
        ).result_rows
    except Exception as exc:
        raise store_error(exc, "hold release") from exc
    if not rows:
        raise OtelDecisionsError(f"no active hold {hold_id!r}; see `otel-decisions hold list`")
    scope, _target, reference = rows[0]
    client.insert("legal_holds", [[hold_id, "release", scope, "", reason, reference, actor, ""]], column_names=_COLUMNS)
    return len(rows)
