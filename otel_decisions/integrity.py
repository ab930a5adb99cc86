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

Limit: deleting the *last* records of a chain leaves no gap to see; signed checkpoints of chain
heads (a ``decision_integrity`` table) would close that and are not built yet.

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
       uniqExact(SpanId)
FROM otel_traces
WHERE startsWith(SpanName, '{semconv.DECISION_SPAN_PREFIX}')
  AND SpanAttributes['{semconv.DECISION_INTEGRITY_HASH}'] != ''
GROUP BY chain, seq
ORDER BY chain, seq
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
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _hash(prev_hash: str, seq: int, decision_id: str, ts_ns: int, dtype: str, outcome: str, digest: str) -> str:
    return hashlib.sha256(chain_material(prev_hash, seq, decision_id, ts_ns, dtype, outcome, digest)).hexdigest()


def verify(client: Any) -> IntegrityReport:
    """Check every chain in ``otel_traces`` and every row of ``decisions`` against them."""
    report = IntegrityReport()
    links: set[str] = set()
    previous: tuple[str, int, str] | None = None  # chain, seq, stored hash
    for chain, seq, decision_id, ts_ns, dtype, outcome, digest, stored, prev_hash, spans in client.query(_CHAIN_SQL).result_rows:
        seq = int(seq)
        report.checked += 1
        links.add(stored)
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
    return report
