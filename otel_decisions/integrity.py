"""Verify stored decisions against their hash chains: a deleted or altered record is found.

Every recording process keeps a SHA-256 chain (``decision.integrity.chain/.seq/.hash/.prev_hash``,
see :func:`otel_decisions.decision.chain_material`). Verification recomputes each hash from the
stored record and checks the links: an altered field breaks that record's hash, a deleted record
leaves a gap in the sequence, a replaced one breaks the next link.

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

from otel_decisions.decision import chain_material

_SQL = """
SELECT integrity_chain, integrity_seq, decision_id, toUnixTimestamp64Nano(timestamp), decision_type, outcome,
       inputs_digest, integrity_hash, integrity_prev_hash
FROM decisions FINAL
WHERE integrity_hash != ''
ORDER BY integrity_chain, integrity_seq, decision_id
"""


@dataclass(frozen=True)
class Problem:
    """One integrity finding."""

    kind: str  # altered | missing | broken_link | duplicate_seq
    chain: str
    seq: int
    decision_id: str
    detail: str


@dataclass
class IntegrityReport:
    """Result of :func:`verify`."""

    checked: int = 0
    chains: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(client: Any) -> IntegrityReport:
    """Recompute every stored decision's chain hash and check sequence and links."""
    report = IntegrityReport()
    previous: tuple[str, int, str, str] | None = None  # chain, seq, hash, decision id
    for chain, seq, decision_id, ts_ns, dtype, outcome, digest, stored_hash, prev_hash in client.query(_SQL).result_rows:
        seq = int(seq or 0)
        report.checked += 1
        expected = hashlib.sha256(
            chain_material(prev_hash, seq, decision_id, int(ts_ns), dtype, outcome, digest)
        ).hexdigest()
        if expected != stored_hash:
            report.problems.append(Problem("altered", chain, seq, decision_id,
                                           "stored fields do not match the record's hash"))
        if previous is None or previous[0] != chain:
            report.chains += 1
            if seq != 1:
                report.problems.append(Problem("missing", chain, seq, decision_id,
                                               f"chain starts at seq {seq}: records 1..{seq - 1} are missing"))
            elif prev_hash:
                report.problems.append(Problem("broken_link", chain, seq, decision_id,
                                               "first record of the chain has a predecessor hash"))
        else:
            _, prev_seq, prev_stored_hash, prev_id = previous
            if seq == prev_seq:
                report.problems.append(Problem("duplicate_seq", chain, seq, decision_id,
                                               f"seq {seq} also used by decision {prev_id}"))
            elif seq != prev_seq + 1:
                report.problems.append(Problem("missing", chain, seq, decision_id,
                                               f"records {prev_seq + 1}..{seq - 1} are missing before this one"))
            elif prev_hash != prev_stored_hash:
                report.problems.append(Problem("broken_link", chain, seq, decision_id,
                                               f"prev_hash does not match the stored hash of seq {prev_seq}"))
        previous = (chain, seq, stored_hash, decision_id)
    return report
