"""The per-process hash chain over decision records, and the digest of one record as stored.

Example::

    from otel_decisions.integrity import HashChain, record_digest

    chain = HashChain()
    chain_id, seq, chain_hash, prev_hash = chain.link(record_id, timestamp_ns, record_digest(attributes))
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Mapping
from typing import Any

from otel_decisions.integrity._render import attribute_to_string

UNHASHED_PREFIXES: tuple[str, ...] = ("decision.integrity.", "redaction.")
"""Attributes a record's digest leaves out: the chain's own, and counts a collector's redaction adds."""


def record_digest(attributes: Mapping[str, Any]) -> str:
    """SHA-256 over every attribute of a decision or review record, as stored.

    Values are rendered as the ClickHouse exporters store them (the collector's ``AsString``), so
    ``otel-decisions verify`` recomputes the same digest from ``otel_traces.SpanAttributes``:
    changing any stored field — reasons, confidence, model version, rationale — breaks the chain.
    Each key and value is length-prefixed, so no two different records share a digest input.
    """
    parts = []
    for key in sorted(attributes):
        head = _DIGEST_HEADS.get(key)
        if head is None:
            head = _digest_head(key)
        if not head:
            continue
        value = attributes[key]
        text = value if type(value) is str else attribute_to_string(value)
        parts.append(f"{head}{len(text)}:{text}")
    return hashlib.sha256("".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


_DIGEST_HEADS: dict[str, str] = {}


def _digest_head(key: str) -> str:
    """The length-prefixed key that starts a key's part of a record digest ('' for keys left out)."""
    head = "" if key.startswith(UNHASHED_PREFIXES) else f"{len(key)}:{key}"
    if len(_DIGEST_HEADS) < 10_000:
        _DIGEST_HEADS[key] = head
    return head


def chain_material(prev_hash: str, seq: int, record_id: str, timestamp_ns: int, digest: str) -> bytes:
    """The bytes a chain hash covers: the previous hash, the position, and the record (id, time, digest)."""
    return f"{prev_hash}|{seq}|{record_id}|{timestamp_ns}|{digest}".encode()


class HashChain:
    """Per-process hash chain over recorded decisions: each hash covers the record and the previous hash.

    A forked child starts a chain of its own (same seq numbers in two processes would look like tampering).
    """

    def __init__(self) -> None:
        self.reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self._lock = threading.Lock()
        self.chain_id = str(uuid.uuid4())
        self._seq = 0
        self._prev = ""
        self._ended = 0
        self._checkpointed = 0

    def unlink(self, seq: int, prev_hash: str) -> None:
        """Take back link *seq* whose record was refused, if nothing was linked after it.

        (With another thread's record already linked behind it, the gap stays and ``verify``
        reports it: the refusal was loud, at the recording call.)
        """
        with self._lock:
            if self._seq == seq:
                self._seq -= 1
                self._prev = prev_hash
                self._ended -= 1  # the caller's ``ended()`` still follows

    def ended(self) -> None:
        """A linked record's span has ended (so it is spooled): checkpoints may cover it."""
        with self._lock:
            self._ended += 1

    def head_for_checkpoint(self) -> tuple[str, int, str] | None:
        """(chain, seq, hash) of the head if it moved since the last checkpoint and no record is in flight."""
        with self._lock:
            if self._seq == self._checkpointed or self._ended != self._seq:
                return None
            self._checkpointed = self._seq
            return self.chain_id, self._seq, self._prev

    def link(self, record_id: str, timestamp_ns: int, digest: str) -> tuple[str, int, str, str]:
        with self._lock:
            self._seq += 1
            prev = self._prev
            current = hashlib.sha256(chain_material(prev, self._seq, record_id, timestamp_ns, digest)).hexdigest()
            self._prev = current
            return self.chain_id, self._seq, current, prev


def checkpoint_material(chain_id: str, seq: int, head_hash: str) -> str:
    """The text a checkpoint's HMAC signature covers: the chain head."""
    return f"{chain_id}|{seq}|{head_hash}"


def links_digest(links: Any) -> str:
    """SHA-256 over chain links ``(chain, seq, hash, prev_hash)``, in chain order: what a disposal or erasure covers."""
    digest = hashlib.sha256()
    for chain_id, seq, link_hash, prev_hash in sorted((str(c), int(s), str(h), str(p)) for c, s, h, p in links):
        digest.update(f"{chain_id}|{seq}|{link_hash}|{prev_hash}\n".encode())
    return digest.hexdigest()


def kept_digest(kept: Any) -> str:
    """SHA-256 over an operation's kept records ``(decision_id, obligation)``."""
    digest = hashlib.sha256()
    for decision_id, obligation in sorted((str(d), str(o)) for d, o in kept):
        digest.update(f"{len(decision_id)}:{decision_id}|{len(obligation)}:{obligation}\n".encode())
    return digest.hexdigest()


def operation_material(
    operation_id: str, kind: str, digest: str, deleted: int, request: str, actor: str, kept: str
) -> str:
    """What a life-cycle operation's signature covers: its id, kind, who ran it for which request, the digest
    and count of the links it removed, and the digest of the records it kept (with their obligations)."""
    return f"lifecycle|{operation_id}|{kind}|{deleted}|{digest}|{kept}|{len(request)}:{request}|{len(actor)}:{actor}"
