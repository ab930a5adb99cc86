"""Disposal and erasure: explicit, recorded, verifiable removal of decision records.

Both follow the same steps, so ``verify`` can tell them apart from tampering:

1. the chain links to remove (every decision, review and event span of the chosen decisions) are
   written to ``lifecycle_records`` first, with their position and hashes (a *tombstone*);
2. the operation is written to ``lifecycle_operations``: who, when, why (the request), how many,
   and the SHA-256 of its tombstones, signed with the pseudonym key (HMAC);
3. only then are the spans and typed rows deleted.

``verify`` walks each chain with the tombstones in place of the removed links (so their hashes
still link the chain) and checks each operation's digest and signature; a record deleted without
a tombstone is still a gap, and a tombstone without its operation, or an operation whose digest
does not match its tombstones, is reported.

Example::

    from otel_decisions.lifecycle import apply_retention, erase_subject
    result = apply_retention(client, actor="records-manager", key=key, dry_run=True)
    outcome = erase_subject(client, subject_pseudonym, request="DSR-2026-114", actor="dpo", key=key)
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from otel_decisions import semconv
from otel_decisions.errors import OtelDecisionsError
from otel_decisions.integrity import kept_digest, links_digest, operation_material, sign
from otel_decisions.lifecycle._holds import active_holds, check_subject
from otel_decisions.lifecycle._sql import HELD_SQL, LINK_SELECT, RECORD_KINDS
from otel_decisions.privacy import key_id
from otel_decisions.retention import RetentionPolicy
from otel_decisions.store.errors import store_error

__all__ = ["LifecycleResult", "apply_retention", "erase_subject", "record_policy", "due_for_disposal"]

HOLD_OBLIGATION = "GDPR Art. 17(3)(e): legal hold {hold_id} ({reference}): {reason}"
RETENTION_OBLIGATION = "GDPR Art. 17(3)(b): {basis}, until {until}"


@dataclass
class LifecycleResult:
    """What a disposal or erasure did (or, with ``dry_run``, would do)."""

    kind: str
    operation_id: str | None
    dry_run: bool
    deleted: list[str] = field(default_factory=list)
    """Decision ids removed (with their reviews and events)."""
    kept: dict[str, str] = field(default_factory=dict)
    """Decision id -> the obligation that keeps it."""
    links: int = 0
    """Chain links (decision, review and event spans) removed."""
    held: int = 0
    """Past ``retain_until`` but on a legal hold (disposal only)."""
    swept: int = 0
    """Records an earlier disposal or erasure removed that were stored again (re-delivered) or left by an
    interrupted run, removed again now."""


def _today(as_of: date | datetime | None) -> date:
    if as_of is None:
        return datetime.now(UTC).date()
    return as_of.date() if isinstance(as_of, datetime) else as_of


def _rows(client: Any, sql: str, parameters: dict[str, Any] | None = None, what: str = "life cycle") -> list[Any]:
    try:
        return list(client.query(sql, parameters=parameters or {}).result_rows)
    except Exception as exc:
        raise store_error(exc, what) from exc


def _command(client: Any, sql: str, parameters: dict[str, Any] | None = None, what: str = "life cycle") -> None:
    try:
        client.command(sql, parameters=parameters or {})
    except Exception as exc:
        raise store_error(exc, what) from exc


def record_policy(client: Any, policy: RetentionPolicy, *, actor: str, source: str) -> bool:
    """Record *policy* in ``retention_policies`` if it is not the latest recorded one; returns whether it was new."""
    latest = _rows(client, "SELECT policy_id FROM retention_policies ORDER BY recorded_at DESC LIMIT 1")
    if latest and latest[0][0] == policy.policy_id:
        return False
    client.insert(
        "retention_policies",
        [[policy.policy_id, policy.text, actor, source]],
        column_names=["policy_id", "policy", "recorded_by", "source"],
    )
    return True


_DUE_SQL = (
    "SELECT decision_id, retention_until AS retain_until, retention_basis AS obligation FROM decisions FINAL "
    "WHERE retention_until IS NOT NULL AND retention_until < {{today:Date32}} AND NOT {held}"
)
"""Decisions past ``retain_until`` on ``{today}`` that no active hold covers (``retention_due`` asks the same)."""


def due_for_disposal(client: Any, as_of: date | datetime | None = None) -> tuple[list[tuple[Any, ...]], int]:
    """(decision_id, retain_until, basis) of records past ``retain_until`` and not held; and how many are held."""
    today = _today(as_of)
    due = _rows(
        client,
        _DUE_SQL.format(held=HELD_SQL) + " ORDER BY retain_until, decision_id",
        {"today": today.isoformat()},
        "retention due",
    )
    held = _rows(
        client,
        "SELECT count() FROM decisions FINAL "
        f"WHERE retention_until IS NOT NULL AND retention_until < {{today:Date32}} AND {HELD_SQL}",
        {"today": today.isoformat()},
        "retention due",
    )
    return due, int(held[0][0])


_RECORD_COLUMNS = (
    "operation_id, kind, action, record_kind, record_id, decision_id, chain, seq, hash, prev_hash, retain_until, "
    "obligation, at"
)


def _remove(
    client: Any,
    *,
    kind: str,
    actor: str,
    request: str,
    selection: str,
    parameters: dict[str, Any],
    kept: dict[str, str],
    key: bytes,
    detail: dict[str, Any],
    extra_deletes: tuple[tuple[str, str], ...] = (),
) -> tuple[str, list[str], int]:
    """Tombstone, record and delete the chain links of the decisions *selection* returns.

    *selection*: SQL returning ``decision_id, retain_until, obligation`` (it may use ``{op:String}``:
    the operation's id, whose ``kept`` rows are already written). Returns (operation id, decision
    ids removed, links removed). The tombstones are written server-side, before anything is deleted.
    """
    operation_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    params = {**parameters, "op": operation_id, "kind": kind}
    try:
        if kept:
            client.insert(
                "lifecycle_records",
                [
                    [operation_id, kind, "kept", "decision", decision_id, decision_id, "", 0, "", "", None, why, now]
                    for decision_id, why in sorted(kept.items())
                ],
                column_names=[c.strip() for c in _RECORD_COLUMNS.split(",")],
            )
        client.command(
            f"INSERT INTO lifecycle_records ({_RECORD_COLUMNS})\n"
            "SELECT {op:String}, {kind:String}, 'deleted', l.record_kind, l.record_id, l.decision_id, l.chain, l.seq, "
            "l.hash, l.prev_hash, s.retain_until, s.obligation, now64(3)\n"
            f"FROM ({LINK_SELECT}) AS l\nINNER JOIN ({selection}) AS s ON s.decision_id = l.decision_id",
            parameters=params,
        )
    except Exception as exc:
        raise store_error(exc, f"{kind}: recording what is removed") from exc
    removed = _rows(
        client,
        "SELECT chain, seq, hash, prev_hash, decision_id FROM lifecycle_records "
        "WHERE operation_id = {op:String} AND action = 'deleted'",
        {"op": operation_id},
        kind,
    )
    deleted = sorted({row[4] for row in removed})
    digest = links_digest(row[:4] for row in removed)
    material = operation_material(operation_id, kind, digest, len(removed), request, actor, kept_digest(kept.items()))
    signature = sign(key, material)
    try:
        client.insert(
            "lifecycle_operations",
            [
                [
                    operation_id,
                    kind,
                    now,
                    actor,
                    request,
                    json.dumps(detail, sort_keys=True, default=str),
                    len(deleted),
                    len(kept),
                    digest,
                    signature,
                    key_id(key),
                ]
            ],
            column_names=[
                "operation_id",
                "kind",
                "at",
                "actor",
                "request",
                "detail",
                "deleted",
                "kept",
                "digest",
                "signature",
                "key_id",
            ],
        )
    except Exception as exc:
        raise store_error(exc, f"{kind}: recording the operation") from exc
    if deleted:
        # A mutation evaluates an IN subquery for each part it rewrites: a few ids go as a literal set instead.
        if len(deleted) <= _LITERAL_IDS:
            chosen, params = "{ids:Array(String)}", {**params, "ids": deleted}
        else:
            chosen = "SELECT decision_id FROM lifecycle_records WHERE operation_id = {op:String} AND action = 'deleted'"
        # Prefect's task-run spans of the removed decisions carried the task's parameters (its inputs): they go
        # too, unless the task run also made a decision that stays.
        # (listed in lifecycle_records as record_kind 'task_run', action 'removed_run': what went, and a set a
        # mutation reads cheaply for every part)
        _command(
            client,
            f"INSERT INTO lifecycle_records ({_RECORD_COLUMNS})\n"
            "SELECT {op:String}, {kind:String}, 'removed_run', 'task_run', task_run_id, '', '', 0, '', '', NULL, '', "
            "now64(3) FROM decisions WHERE task_run_id != '' GROUP BY task_run_id HAVING countIf(decision_id IN "
            "(SELECT decision_id FROM lifecycle_records WHERE operation_id = {op:String} AND action = 'deleted')) "
            "= count()",
            params,
            kind,
        )
        runs = "SELECT record_id FROM lifecycle_records WHERE operation_id = {op:String} AND action = 'removed_run'"
        not_records = f"NOT {semconv.record_sql()}"
        run_targets = [
            (
                "otel_traces",
                f"{not_records} AND (SpanAttributes['{semconv.PREFECT_TASK_RUN_ID}'] IN ({runs}) "
                f"OR (SpanAttributes['{semconv.PREFECT_RUN_TYPE}'] = 'task' AND SpanAttributes['{semconv.PREFECT_RUN_ID}'] "
                f"IN ({runs})))",
            )
        ]
        targets = (
            *run_targets,
            *extra_deletes,
            *_record_rows(chosen),
        )
        by_table: dict[str, list[str]] = {}
        for table, where in targets:  # one DELETE per table: each is a mutation of every part
            by_table.setdefault(table, []).append(f"({where})")
        for table, conditions in by_table.items():
            _delete(client, table, " OR ".join(conditions), params, kind)
    return operation_id, deleted, len(removed)


_LITERAL_IDS = 1000
"""Up to this many ids are bound as an array (an HTTP form field holds about 100 KB)."""


def _delete(client: Any, table: str, where: str, parameters: dict[str, Any], kind: str) -> None:
    """A lightweight DELETE (synchronous: it returns once applied), then the check that no row matches."""
    _command(client, f"DELETE FROM {table} WHERE {where}", parameters, kind)
    if int(_rows(client, f"SELECT count() FROM {table} WHERE {where}", parameters, kind)[0][0]):
        raise OtelDecisionsError(
            f"{kind}: rows of {table} are still visible after their DELETE; the operation is recorded "
            "(lifecycle_operations), so run it again to finish it"
        )


_REMOVED = "SELECT decision_id FROM lifecycle_records WHERE action = 'deleted'"


def _record_rows(chosen: str) -> tuple[tuple[str, str], ...]:
    """(table, condition) of every stored copy of the decisions *chosen* (SQL set) names, reviews and events too:
    their spans and their typed rows."""
    return (
        (
            "otel_traces",
            f"{semconv.record_sql(*RECORD_KINDS)} AND SpanAttributes['{semconv.DECISION_ID}'] IN ({chosen})",
        ),
        ("decisions", f"decision_id IN ({chosen})"),
        ("decision_reviews", f"decision_id IN ({chosen})"),
        ("decision_events", f"decision_id IN ({chosen})"),
    )


def _sweep(client: Any, kind: str) -> int:
    """Remove again what earlier operations removed (a re-delivered span, a run interrupted between its
    DELETEs): their tombstones already cover it. Returns how many rows were removed."""
    swept = 0
    for table, where in _record_rows(_REMOVED):
        count = int(_rows(client, f"SELECT count() FROM {table} WHERE {where}", {}, kind)[0][0])
        if count:
            _delete(client, table, where, {}, kind)
            swept += count
    return swept


def _require_actor(actor: str) -> None:
    if not actor or not actor.strip():
        raise OtelDecisionsError("--by: say who runs this (a records manager's or DPO's user id); it is recorded")


def _require_key(key: bytes | None) -> bytes:
    if not key:
        raise OtelDecisionsError(
            "no HMAC key: a disposal or erasure record must be signed with the key the records were made with "
            "(set OTEL_DECISIONS_HMAC_KEY, or OTEL_DECISIONS_DATA_DIR to the directory holding hmac.key), or "
            "verify would report the removal as forged"
        )
    return key


def apply_retention(
    client: Any,
    *,
    actor: str,
    key: bytes | None,
    dry_run: bool = False,
    as_of: date | datetime | None = None,
    policy: RetentionPolicy | None = None,
) -> LifecycleResult:
    """Dispose of every record past its ``retain_until`` that no legal hold covers (with its reviews and events)."""
    _require_actor(actor)
    due, held = due_for_disposal(client, as_of)
    result = LifecycleResult("disposal", None, dry_run, [d[0] for d in due], {}, 0, held)
    if dry_run:
        return result
    if policy is not None:
        record_policy(client, policy, actor=actor, source="retention apply")
    today = _today(as_of)
    signing = _require_key(key)
    result.swept = _sweep(client, "disposal")
    result.operation_id, result.deleted, result.links = _remove(
        client,
        kind="disposal",
        actor=actor,
        request=f"retention apply as of {today.isoformat()}",
        selection=_DUE_SQL.format(held=HELD_SQL),
        parameters={"today": today.isoformat()},
        kept={},
        key=signing,
        detail={"as_of": today.isoformat(), "held": held, "policy": policy.policy_id if policy else ""},
    )
    return result


def erase_subject(
    client: Any,
    subject_id: str,
    *,
    request: str,
    actor: str,
    key: bytes | None,
    dry_run: bool = False,
    as_of: date | datetime | None = None,
) -> LifecycleResult:
    """GDPR Art. 17: remove the (pseudonymised) subject's records that no obligation keeps; name the obligation of the rest.

    Removed: the decisions with their reviews and events, the Prefect task-run spans of their task runs
    (which carried the inputs as parameters) and any other span holding the pseudonym. Kept: records
    under a legal hold (Art. 17(3)(e)) or within a legal retention obligation (Art. 17(3)(b)).
    The erasure record names the request and the removed records' ids and hashes, never the subject.
    """
    _require_actor(actor)
    if not request or not request.strip():
        raise OtelDecisionsError("--request: give the erasure request's reference (e.g. DSR-2026-114); it is recorded")
    check_subject(subject_id or "", "SUBJECT_ID")
    today = _today(as_of)
    # what was stored when the obligations and holds were checked: a decision stored later is not erased unchecked
    checked_at = _rows(client, "SELECT now64(3)", {}, "erasure")[0][0]
    decisions = _rows(
        client,
        "SELECT decision_id, retention_until, retention_obligation_until, retention_basis, flow_run_id, decision_type, "
        "task_run_id FROM decisions FINAL WHERE subject_id = {s:String} ORDER BY timestamp, decision_id",
        {"s": subject_id},
        "erasure",
    )
    holds = active_holds(client)
    erased: list[tuple[str, Any, str]] = []
    kept: dict[str, str] = {}
    for decision_id, until, obligation, basis, flow_run_id, decision_type, _task_run in decisions:
        hold = next(
            (
                h
                for h in holds
                if (h.scope, h.target)
                in (
                    ("decision", decision_id),
                    ("subject", subject_id),
                    ("flow_run", flow_run_id),
                    ("decision_type", decision_type),
                )
            ),
            None,
        )
        if hold is not None:
            kept[decision_id] = HOLD_OBLIGATION.format(
                hold_id=hold.hold_id, reference=hold.reference, reason=hold.reason
            )
        elif obligation is not None and obligation >= today:
            kept[decision_id] = RETENTION_OBLIGATION.format(basis=basis, until=obligation)
        elif until is None:  # the class is not in the policy: whether the law requires keeping it is unknown
            kept[decision_id] = f"unknown retention: {basis}; add the class to the policy, then erase again"
        else:
            erased.append((decision_id, until, "erased: no obligation to keep"))
    result = LifecycleResult("erasure", None, dry_run, [e[0] for e in erased], kept)
    if dry_run:
        return result
    signing = _require_key(key)
    result.swept = _sweep(client, "erasure")
    not_records = f"NOT {semconv.record_sql()}"
    extra: tuple[tuple[str, str], ...] = ()
    if erased:
        if not kept:  # any other span naming the subject (with kept records, their context stays)
            extra += (("otel_traces", f"{not_records} AND has(mapValues(SpanAttributes), {{s:String}})"),)
    result.operation_id, result.deleted, result.links = _remove(
        client,
        kind="erasure",
        actor=actor,
        request=request,
        selection=(
            "SELECT decision_id, any(retention_until) AS retain_until, 'erased: no obligation to keep' AS obligation "
            "FROM decisions WHERE subject_id = {s:String} AND decision_id NOT IN "
            "(SELECT decision_id FROM lifecycle_records WHERE operation_id = {op:String} AND action = 'kept') "
            "GROUP BY decision_id HAVING min(ingested_at) <= {checked:DateTime64(3)}"
        ),
        parameters={"s": subject_id, "checked": checked_at},
        kept=kept,
        key=signing,
        detail={"as_of": today.isoformat()},
        extra_deletes=extra,
    )
    return result
