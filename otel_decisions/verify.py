"""Verify stored decisions against their hash chains: a deleted, altered or inserted record is found.

Every recording process keeps a SHA-256 chain over its decision *and* review records
(``decision.integrity.chain/.seq/.hash/.prev_hash``): each link covers the previous hash, its
position, the record id, its time and :func:`otel_decisions.integrity.record_digest` — a digest of
every stored attribute. Verification has three parts:

1. the chains, over every delivered decision and review span in ``otel_traces`` (a decision
   recorded again by a retried task is a new link; a re-delivered span is the same link): each
   hash is recomputed from the stored attributes, sequences must have no gaps, and each
   ``prev_hash`` must be the previous link's hash;
2. the typed ``decisions`` and ``decision_reviews`` tables that every query reads: each row must
   equal what the materialized view derives from one delivered span (so an ``ALTER ... UPDATE``
   or a row inserted behind the pipeline's back is found), and every delivered record must have
   its row (so a row deleted from the typed table only is found);
3. the signed checkpoints (``decision.integrity.checkpoint`` spans, recorded at every flow run's
   end, on ``force_flush()`` and at shutdown): each names a chain head (seq, hash) under an HMAC of
   the pseudonym key, so records deleted from the *end* of a chain are found too, and a checkpoint
   forged without the key, or claiming another key than its chain's records, is reported;
4. disposals and erasures (:mod:`otel_decisions.lifecycle`): each removed link left a tombstone
   (its chain, seq, hash and prev_hash) under a signed operation record, so the walk in 1 takes the
   tombstone in the record's place (no false "missing" after an authorised removal, the links
   around it still check), and an operation whose tombstones do not match its digest or signature,
   or tombstones without an operation, are reported (``forged_removal``). A record deleted without
   a tombstone is still a gap.

Limits: records deleted after a chain's last checkpoint (the decisions since the last flow end
in a process that then died) leave no trace; a verifier without the chain's key checks the
checkpoints' content but not their signatures (``IntegrityReport.unsigned_checkpoints``).

Example::

    from otel_decisions.store.client import get_client
    from otel_decisions.verify import verify
    report = verify(get_client("chdb:///data/decisions"))
    assert report.ok, report.problems
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from otel_decisions import semconv
from otel_decisions.integrity import (
    chain_material,
    checkpoint_material,
    kept_digest,
    links_digest,
    operation_material,
    record_digest,
    signature_valid,
)
from otel_decisions.privacy import key_id
from otel_decisions.store import schema
from otel_decisions.store.errors import store_error

_RECORD_PREDICATE = (
    f"{semconv.record_sql(semconv.RecordKind.DECISION, semconv.RecordKind.REVIEW, semconv.RecordKind.EVENT)} "
    f"AND SpanAttributes['{semconv.DECISION_INTEGRITY_HASH}'] != ''"
)

_CHAIN_SQL = f"""
SELECT SpanAttributes['{semconv.DECISION_INTEGRITY_CHAIN}'] AS chain,
       toInt64OrZero(SpanAttributes['{semconv.DECISION_INTEGRITY_SEQ}']) AS seq,
       any(multiIf(SpanName = '{semconv.REVIEW_SPAN_NAME}', SpanAttributes['{semconv.DECISION_REVIEW_ID}'],
                   SpanName = '{semconv.EVENT_SPAN_NAME}', SpanAttributes['{semconv.DECISION_EVENT_ID}'],
                   SpanAttributes['{semconv.DECISION_ID}'])),
       any(toUnixTimestamp64Nano(Timestamp)),
       any(SpanAttributes),
       uniqExact(SpanId),
       uniqExact(SpanAttributes)
FROM otel_traces
WHERE {_RECORD_PREDICATE}
GROUP BY chain, seq
ORDER BY chain, seq
"""

_OPERATIONS_SQL = """
SELECT o.operation_id, o.kind, o.digest, o.signature, o.key_id, o.deleted, o.request, o.actor
FROM lifecycle_operations AS o
ORDER BY o.at, o.operation_id
"""

_REMOVALS_SQL = """
SELECT operation_id, chain, seq, hash, prev_hash, action, decision_id, obligation, record_id
FROM lifecycle_records
ORDER BY chain, seq, operation_id
"""
"""Every row of every disposal and erasure: tombstones (``deleted``), ``kept`` decisions, ``removed_run`` task runs."""

_CHECKPOINT_SQL = f"""
SELECT SpanAttributes['{semconv.DECISION_INTEGRITY_CHAIN}'],
       toInt64OrZero(SpanAttributes['{semconv.DECISION_INTEGRITY_SEQ}']),
       SpanAttributes['{semconv.DECISION_INTEGRITY_HASH}'],
       SpanAttributes['{semconv.DECISION_INTEGRITY_SIGNATURE}'],
       SpanAttributes['{semconv.DECISION_PSEUDONYM_KEY_ID}']
FROM otel_traces
WHERE SpanName = '{semconv.CHECKPOINT_SPAN_NAME}'
ORDER BY 1, 2
"""


def _typed_sql(*, events: bool = True) -> list[tuple[str, str, str]]:
    """(kind, rows in the typed table that no delivered span derives, delivered records with no typed row)."""
    checks = []
    for table, columns, key, id_key, predicate in (
        ("decisions", schema.DECISION_COLUMNS, "decision_id", semconv.DECISION_ID, schema.decision_span_predicate()),
        (
            "decision_reviews",
            schema.REVIEW_COLUMNS,
            "review_id",
            semconv.DECISION_REVIEW_ID,
            schema.review_span_predicate(),
        ),
        ("decision_events", schema.EVENT_COLUMNS, "event_id", semconv.DECISION_EVENT_ID, schema.event_span_predicate()),
    ):
        if table == "decision_events" and not events:
            continue  # a store from before migration 5
        names = ", ".join([name for name, _type, _expr in schema.SPAN_COLUMNS] + [col.name for col in columns])
        derived = schema.typed_select(columns, "otel_traces", predicate)
        orphans = f"SELECT {key} FROM (SELECT {names} FROM {table} FINAL EXCEPT {derived}) ORDER BY {key}"
        missing = (
            f"SELECT DISTINCT SpanAttributes['{id_key}'] AS id FROM otel_traces WHERE {predicate} "
            f"AND id NOT IN (SELECT {key} FROM {table}) ORDER BY id"
        )
        checks.append((table, orphans, missing))
    return checks


@dataclass(frozen=True)
class Problem:
    """One integrity finding."""

    kind: str  # altered | missing | broken_link | forked | forged_checkpoint | not_in_store | forged_removal | resurrected
    chain: str
    seq: int
    record_id: str
    detail: str


@dataclass
class IntegrityReport:
    """Result of :func:`verify`."""

    checked: int = 0
    chains: int = 0
    checkpoints: int = 0
    unsigned_checkpoints: int = 0
    """Checkpoints whose signature could not be checked (signed with a key this verifier does not hold)."""
    removed: int = 0
    """Chain links removed by a recorded disposal or erasure (their tombstones stand in for them)."""
    operations: int = 0
    """Disposal and erasure operations checked."""
    unsigned_operations: int = 0
    """Operations whose signature could not be checked (no key, or another key)."""
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _chain_hash(prev_hash: str, seq: int, record_id: str, ts_ns: int, attributes: dict[str, str]) -> str:
    return hashlib.sha256(chain_material(prev_hash, seq, record_id, ts_ns, record_digest(attributes))).hexdigest()


def _rows(client: Any, sql: str) -> list[Any]:
    try:
        return list(client.query(sql).result_rows)
    except Exception as exc:
        raise store_error(exc, "verify") from exc


def _has_table(client: Any, name: str) -> bool:
    try:
        return bool(int(client.command(f"EXISTS TABLE {name}")))
    except Exception as exc:
        raise store_error(exc, "verify") from exc


def _tombstones(removals: list[Any]) -> dict[tuple[str, int], list[Any]]:
    """The removal rows that stand in for a chain link, by (chain, seq)."""
    by_link: dict[tuple[str, int], list[Any]] = {}
    for row in removals:
        if row[5] == "deleted" and row[1]:
            by_link.setdefault((row[1], int(row[2])), []).append(row)
    return by_link


def _check_operations(
    client: Any, key: bytes | None, report: IntegrityReport, chain_keys: dict[str, str], removals: list[Any]
) -> list[Problem]:
    """Each disposal or erasure: its tombstones' digest and count, what it kept, who ran it for which request,
    all under its signature, made with the key of the chains it removed links from; tombstones without an
    operation. A verifier without that key checks everything but the signature (``unsigned_operations``)."""
    problems: list[Problem] = []
    links: dict[str, list[tuple[str, int, str, str]]] = {}
    kept: dict[str, list[tuple[str, str]]] = {}
    decisions: dict[str, str] = {}
    for operation_id, chain, seq, link_hash, prev_hash, action, decision_id, obligation, _record in removals:
        decisions.setdefault(operation_id, decision_id)
        if action == "deleted":
            links.setdefault(operation_id, []).append((chain, int(seq), link_hash, prev_hash))
        elif action == "kept":
            kept.setdefault(operation_id, []).append((decision_id, obligation))
    own_key_id = key_id(key) if key else None
    known = set()
    for operation_id, kind, digest, signature, signer, _deleted, request, actor in _rows(client, _OPERATIONS_SQL):
        known.add(operation_id)
        report.operations += 1
        covered = links.get(operation_id, [])
        where = f"{kind} {request!r} by {actor!r}"
        if links_digest(covered) != digest:
            problems.append(
                Problem("forged_removal", "", 0, operation_id, f"{where}: its tombstones do not match its digest")
            )
            continue
        others = sorted({chain_keys[c] for c, *_ in covered if chain_keys.get(c, signer) != signer})
        if not signature or not signer or others:
            why = (
                "is not signed"
                if not (signature and signer)
                else f"is signed with key {signer!r}, its chains use {others}"
            )
            problems.append(Problem("forged_removal", "", 0, operation_id, f"{where} {why}"))
            continue
        if own_key_id is not None and signer == own_key_id:
            material = operation_material(
                operation_id, kind, digest, len(covered), request, actor, kept_digest(kept.get(operation_id, []))
            )
            if not signature_valid(key, material, signature):  # type: ignore[arg-type]
                problems.append(Problem("forged_removal", "", 0, operation_id, f"{where}: signature does not verify"))
        else:
            report.unsigned_operations += 1
    for operation_id in sorted((set(links) | set(kept)) - known):
        problems.append(
            Problem(
                "forged_removal",
                "",
                0,
                decisions.get(operation_id, ""),
                f"tombstones of operation {operation_id} with no disposal or erasure record",
            )
        )
    return problems


def verify(client: Any, *, key: bytes | None = None) -> IntegrityReport:
    """Check every chain in ``otel_traces``, the typed tables against it, and every checkpoint.

    *key*: the HMAC key (``otel_decisions.privacy.resolve_hmac_key(settings)``) to check checkpoint signatures.
    """
    report = IntegrityReport()
    heads: dict[str, dict[int, str]] = {}
    chain_keys: dict[str, str] = {}
    previous: tuple[str, int, str] | None = None  # chain, seq, stored hash
    lifecycle = _has_table(client, "lifecycle_records")
    links: list[tuple[Any, ...]] = [(str(r[0]), int(r[1]), False, *r[2:]) for r in _rows(client, _CHAIN_SQL)]
    present = {(chain, seq) for chain, seq, *_rest in links}
    removals = _rows(client, _REMOVALS_SQL) if lifecycle else []
    if lifecycle:
        stored_hash = {(r[0], r[1]): dict(r[5]).get(semconv.DECISION_INTEGRITY_HASH, "") for r in links}
        for (chain, seq), tombstones in _tombstones(removals).items():
            operation_id, _c, _s, link_hash, prev_link, _a, _d, _o, record_id = tombstones[0]
            if len({t[3] for t in tombstones}) > 1:
                report.problems.append(
                    Problem("forged_removal", chain, seq, record_id, "removal records disagree on this link's hash")
                )
            if (chain, seq) not in present:
                links.append((chain, seq, True, record_id, link_hash, prev_link, operation_id))
            elif stored_hash[(chain, seq)] != link_hash:
                report.problems.append(
                    Problem("altered", chain, seq, record_id, "the record at a removed position has another hash")
                )
            else:  # e.g. re-delivered after its removal: `retention apply` or `erase` removes it again
                report.problems.append(
                    Problem(
                        "resurrected",
                        chain,
                        seq,
                        record_id,
                        f"removed by operation {operation_id} but stored again; run `otel-decisions retention apply`",
                    )
                )
        links.sort(key=lambda link: (link[0], link[1]))
    for chain, seq, removed, record_id, *rest in links:
        if removed:
            # removed by a recorded disposal or erasure: its tombstone's hashes stand in for the record
            stored, prev_hash, _operation = rest
            report.removed += 1
            heads.setdefault(chain, {})[seq] = stored
        else:
            ts_ns, attributes, spans, versions = rest
            attributes = dict(attributes)
            stored = attributes.get(semconv.DECISION_INTEGRITY_HASH, "")
            prev_hash = attributes.get(semconv.DECISION_INTEGRITY_PREV_HASH, "")
            report.checked += 1
            heads.setdefault(chain, {})[seq] = stored
            chain_keys.setdefault(chain, attributes.get(semconv.DECISION_PSEUDONYM_KEY_ID, ""))
            if int(spans) > 1:
                report.problems.append(
                    Problem("forked", chain, seq, record_id, f"{spans} different spans claim this chain position")
                )
            elif int(versions) > 1:
                report.problems.append(
                    Problem("altered", chain, seq, record_id, "copies of this span differ in their stored attributes")
                )
            if _chain_hash(prev_hash, seq, record_id, int(ts_ns), attributes) != stored:
                report.problems.append(
                    Problem("altered", chain, seq, record_id, "the stored span's attributes do not produce its hash")
                )
        if previous is None or previous[0] != chain:
            report.chains += 1
            if seq != 1:
                report.problems.append(
                    Problem(
                        "missing", chain, seq, record_id, f"chain starts at seq {seq}: records 1..{seq - 1} are missing"
                    )
                )
            elif prev_hash:
                report.problems.append(
                    Problem("broken_link", chain, seq, record_id, "first record of the chain names a predecessor")
                )
        else:
            _, prev_seq, prev_stored = previous
            if seq != prev_seq + 1:
                report.problems.append(
                    Problem(
                        "missing",
                        chain,
                        seq,
                        record_id,
                        f"records {prev_seq + 1}..{seq - 1} are missing before this one",
                    )
                )
            elif prev_hash != prev_stored:
                report.problems.append(
                    Problem("broken_link", chain, seq, record_id, f"prev_hash is not the stored hash of seq {prev_seq}")
                )
        previous = (chain, seq, stored)

    checkpoints = _rows(client, _CHECKPOINT_SQL)
    if lifecycle:
        signers = dict(chain_keys)
        for chain, _seq, _hash, _signature, signer in checkpoints:
            signers.setdefault(chain, signer)  # a chain whose every record was removed: its checkpoints' key
        report.problems += _check_operations(client, key, report, signers, removals)

    for table, orphans_sql, missing_sql in _typed_sql(events=lifecycle):
        for (record_id,) in _rows(client, orphans_sql):
            report.problems.append(
                Problem("altered", "", 0, record_id, f"this {table} row is not what any delivered span records")
            )
        for (record_id,) in _rows(client, missing_sql):
            report.problems.append(Problem("not_in_store", "", 0, record_id, f"delivered, but its {table} row is gone"))

    own_key_id = key_id(key) if key else None
    for chain, seq, head_hash, signature, signer in checkpoints:
        seq = int(seq)
        report.checkpoints += 1
        if chain in chain_keys and signer != chain_keys[chain]:
            report.problems.append(
                Problem(
                    "forged_checkpoint",
                    chain,
                    seq,
                    "",
                    f"checkpoint claims key {signer!r}, the chain's records use {chain_keys[chain]!r}",
                )
            )
            continue
        if own_key_id is not None and signer == own_key_id:
            if not signature_valid(key, checkpoint_material(chain, seq, head_hash), signature):  # type: ignore[arg-type]
                report.problems.append(
                    Problem("forged_checkpoint", chain, seq, "", "checkpoint signature does not verify with the key")
                )
                continue
        else:
            report.unsigned_checkpoints += 1
        records = heads.get(chain, {})
        if seq not in records:
            last = max(records, default=0)
            detail = (
                f"checkpoint covers seq {seq} but the chain ends at {last}: records {last + 1}..{seq} are missing"
                if last < seq
                else f"checkpointed record seq {seq} is missing"
            )
            report.problems.append(Problem("missing", chain, seq, "", detail))
        elif records[seq] != head_hash:
            report.problems.append(
                Problem("altered", chain, seq, "", "the record at the checkpointed position has another hash")
            )
    return report
