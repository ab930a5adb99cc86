"""Verify stored decisions against their hash chains: a deleted or altered record is found.

Every recording process keeps a SHA-256 chain (``decision.integrity.chain/.seq/.hash/.prev_hash``,
see :func:`otel_decisions.decision.chain_material`). Verification has two parts:

1. the chains, over every delivered decision span in ``otel_traces`` (a decision recorded again,
   e.g. by a retried task, is a new link of the chain; a re-delivered span is the same link):
   each hash is recomputed from the stored record, sequences must have no gaps, and each
   ``prev_hash`` must be the previous link's hash;
2. the typed ``decisions`` table that queries read: every row must recompute to its own hash,
   and that hash must be a link of a chain — so an ``ALTER ... UPDATE`` or a row inserted
   behind the pipeline's back is found; a decision deleted from one table but not the other too.

3. the signed checkpoints (``decision.integrity.checkpoint`` spans, recorded at every flow run's
   end, on ``force_flush()`` and at shutdown): each names a chain head (seq, hash) under an
   HMAC of the pseudonym key, so records deleted from the *end* of a chain are found too, and a
   checkpoint forged without the key is reported.

Limit: records deleted after a chain's last checkpoint (the decisions since the last flow end in
a process that then died) leave no trace; a verifier without the key (another key id) checks the
checkpoints' content but not their signatures (``IntegrityReport.unsigned_checkpoints``).

Example::

    from otel_decisions.clickhouse.client import get_client
    from otel_decisions.integrity import verify
    report = verify(get_client("chdb:///data/decisions"))
    assert report.ok, report.problems
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from otel_decisions import semconv
from otel_decisions.decision import chain_material

_CHAIN_SQL = f"""
SELECT SpanAttributes['{semconv.DECISION_INTEGRITY_CHAIN}'] AS chain,
       toInt64OrZero(SpanAttributes['{semconv.DECISION_INTEGRITY_SEQ}']) AS seq,
       any(SpanAttributes['{semconv.DECISION_ID}']),
       any(toUnixTimestamp64Nano(Timestamp)),
       any(SpanAttributes['{semconv.DECISION_TYPE}']),
       any(SpanAttributes['{semconv.DECISION_OUTCOME}']),
       any(SpanAttributes['{semconv.DECISION_INPUTS_DIGEST}']),
       any(SpanAttributes['{semconv.DECISION_INTEGRITY_HASH}']),
       any(SpanAttributes['{semconv.DECISION_INTEGRITY_PREV_HASH}']),
       uniqExact(SpanId),
       any(SpanAttributes['{semconv.DECISION_PSEUDONYM_KEY_ID}'])
FROM otel_traces
WHERE startsWith(SpanName, '{semconv.DECISION_SPAN_PREFIX}')
  AND SpanAttributes['{semconv.DECISION_INTEGRITY_HASH}'] != ''
GROUP BY chain, seq
ORDER BY chain, seq
"""

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

_TYPED_SQL = """
SELECT decision_id, integrity_chain, integrity_seq, toUnixTimestamp64Nano(timestamp), decision_type, outcome,
       inputs_digest, integrity_hash, integrity_prev_hash
FROM decisions FINAL
WHERE integrity_hash != ''
"""


@dataclass(frozen=True)
class Problem:
    """One integrity finding."""

    kind: str  # altered | missing | broken_link | forked | not_in_chain
    chain: str
    seq: int
    decision_id: str
    detail: str


@dataclass
class IntegrityReport:
    """Result of :func:`verify`."""

    checked: int = 0
    chains: int = 0
    typed_rows: int = 0
    checkpoints: int = 0
    unsigned_checkpoints: int = 0
    """Checkpoints whose signature could not be checked (signed with a key this verifier does not hold)."""
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _hash(prev_hash: str, seq: int, decision_id: str, ts_ns: int, dtype: str, outcome: str, digest: str) -> str:
    return hashlib.sha256(chain_material(prev_hash, seq, decision_id, ts_ns, dtype, outcome, digest)).hexdigest()


def verify(client: Any, *, key: bytes | None = None) -> IntegrityReport:
    """Check every chain in ``otel_traces``, every row of ``decisions`` and every checkpoint.

    *key*: the HMAC key (``DecisionSettings.resolved_hmac_key()``) to check checkpoint signatures.
    """
    import hmac as _hmac

    from otel_decisions.config import key_id as _key_id

    report = IntegrityReport()
    links: set[str] = set()
    heads: dict[str, dict[int, str]] = {}
    chain_keys: dict[str, str] = {}
    previous: tuple[str, int, str] | None = None  # chain, seq, stored hash
    for chain, seq, decision_id, ts_ns, dtype, outcome, digest, stored, prev_hash, spans, signer in client.query(_CHAIN_SQL).result_rows:
        chain_keys.setdefault(chain, signer)
        seq = int(seq)
        report.checked += 1
        links.add(stored)
        heads.setdefault(chain, {})[seq] = stored
        if int(spans) > 1:
            report.problems.append(Problem("forked", chain, seq, decision_id,
                                           f"{spans} different spans claim this chain position"))
        if _hash(prev_hash, seq, decision_id, int(ts_ns), dtype, outcome, digest) != stored:
            report.problems.append(Problem("altered", chain, seq, decision_id,
                                           "the stored span's fields do not produce its hash"))
        if previous is None or previous[0] != chain:
            report.chains += 1
            if seq != 1:
                report.problems.append(Problem("missing", chain, seq, decision_id,
                                               f"chain starts at seq {seq}: records 1..{seq - 1} are missing"))
            elif prev_hash:
                report.problems.append(Problem("broken_link", chain, seq, decision_id,
                                               "first record of the chain names a predecessor"))
        else:
            _, prev_seq, prev_stored = previous
            if seq != prev_seq + 1:
                report.problems.append(Problem("missing", chain, seq, decision_id,
                                               f"records {prev_seq + 1}..{seq - 1} are missing before this one"))
            elif prev_hash != prev_stored:
                report.problems.append(Problem("broken_link", chain, seq, decision_id,
                                               f"prev_hash is not the stored hash of seq {prev_seq}"))
        previous = (chain, seq, stored)

    for decision_id, chain, seq, ts_ns, dtype, outcome, digest, stored, prev_hash in client.query(_TYPED_SQL).result_rows:
        report.typed_rows += 1
        seq = int(seq or 0)
        if _hash(prev_hash, seq, decision_id, int(ts_ns), dtype, outcome, digest) != stored:
            report.problems.append(Problem("altered", chain, seq, decision_id,
                                           "the decisions row's fields do not produce its hash"))
        elif stored not in links:
            report.problems.append(Problem("not_in_chain", chain, seq, decision_id,
                                           "the decisions row's hash is not a link of any delivered chain"))

    own_key_id = _key_id(key) if key else None
    for chain, seq, head_hash, signature, signer in client.query(_CHECKPOINT_SQL).result_rows:
        seq = int(seq)
        report.checkpoints += 1
        if chain in chain_keys and signer != chain_keys[chain]:
            report.problems.append(Problem("forged_checkpoint", chain, seq, "",
                                           f"checkpoint claims key {signer!r}, the chain's records use {chain_keys[chain]!r}"))
            continue
        if own_key_id is not None and signer == own_key_id:
            expected = _hmac.new(key, f"{chain}|{seq}|{head_hash}".encode(), "sha256").hexdigest()  # type: ignore[arg-type]
            if not _hmac.compare_digest(expected, signature):
                report.problems.append(Problem("forged_checkpoint", chain, seq, "",
                                               "checkpoint signature does not verify with the key"))
                continue
        else:
            report.unsigned_checkpoints += 1
        records = heads.get(chain, {})
        if seq not in records:
            last = max(records, default=0)
            report.problems.append(Problem("missing", chain, seq, "",
                                           f"checkpoint covers seq {seq} but the chain ends at {last}: "
                                           f"records {last + 1}..{seq} are missing" if last < seq else
                                           f"checkpointed record seq {seq} is missing"))
        elif records[seq] != head_hash:
            report.problems.append(Problem("altered", chain, seq, "",
                                           "the record at the checkpointed position has another hash"))
    return report
