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
from collections.abc import Callable, Iterable, Mapping, Sequence
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
_ABSENT = object()


class RecordDigester:
    """:func:`record_digest` for many records that share most attributes: the parts of the *constant*
    attributes (the same key and value in every record) are rendered once; only the *varying* keys
    are rendered per record (a varying key may be absent). ``digest(attrs)`` equals
    ``record_digest(attrs)`` for every *attrs* holding the constant attributes as given."""

    def __init__(self, constant: Mapping[str, Any], varying: Iterable[str]) -> None:
        changing = set(varying)
        plan: list[tuple[str | None, str]] = []
        pending: list[str] = []
        for key in sorted(set(constant) | changing):
            head = _DIGEST_HEADS.get(key)
            if head is None:
                head = _digest_head(key)
            if not head:
                continue
            if key in changing:
                if pending:
                    plan.append((None, "".join(pending)))
                    pending = []
                plan.append((key, head))
            else:
                value = constant[key]
                text = value if type(value) is str else attribute_to_string(value)
                pending.append(f"{head}{len(text)}:{text}")
        if pending:
            plan.append((None, "".join(pending)))
        self._plan = plan
        self._rendered: dict[Any, str] = {}  # numbers and lists repeat from one record to the next

    def for_keys(self, present: Sequence[str]) -> Callable[[Sequence[str]], str]:
        """A digest of records whose varying keys are exactly *present*, called with those keys' values as
        stored text (:func:`attribute_to_string`) in sorted key order: one string format per record."""
        chosen = set(present)
        segments = []
        for key, text in self._plan:
            if key is None:
                segments.append(text.replace("%", "%%"))
            elif key in chosen:
                segments.append(text.replace("%", "%%") + "%d:%s")
        template = "".join(segments)
        sha256 = hashlib.sha256

        def digest(texts: Sequence[str]) -> str:
            args: list[Any] = []
            for text in texts:
                args.append(len(text))
                args.append(text)
            return sha256((template % tuple(args)).encode("utf-8", "surrogatepass")).hexdigest()

        return digest

    def render(self, value: Any) -> str:
        """*value* as stored text (:func:`attribute_to_string`), remembered for numbers and string lists."""
        kind = type(value)
        if kind is str:
            return value
        if (kind is float and value) or (kind is tuple and all(type(item) is str for item in value)):
            # (equal keys must render alike: not True, 1 and 1.0, nor 0.0 and -0.0, nor tuples of them)
            rendered = self._rendered.get(value)
            if rendered is None:
                rendered = attribute_to_string(value)
                if len(self._rendered) >= 65_536:
                    self._rendered.clear()
                self._rendered[value] = rendered
            return rendered
        return attribute_to_string(value)

    def digest(self, attributes: Mapping[str, Any]) -> str:
        parts: list[str] = []
        append = parts.append
        get = attributes.get
        for key, text in self._plan:
            if key is None:
                append(text)
                continue
            value = get(key, _ABSENT)
            if value is _ABSENT:
                continue
            rendered = self.render(value)
            append(f"{text}{len(rendered)}:{rendered}")
        return hashlib.sha256("".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


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

    def ended(self, count: int = 1) -> None:
        """*count* linked records' spans have ended (so they are spooled): checkpoints may cover them."""
        with self._lock:
            self._ended += count

    def link_many(self, records: Sequence[tuple[str, int, str]]) -> tuple[str, int, list[str], str]:
        """:meth:`link` each ``(record id, timestamp, digest)`` in order, as consecutive links (no other
        thread's record between them). Returns the chain id, the first seq, the hashes in order and the
        hash before the first (so the links from the first seq are ``hashes`` with ``[prev, *hashes[:-1]]``)."""
        sha256 = hashlib.sha256
        hashes: list[str] = []
        append = hashes.append
        with self._lock:
            first = self._seq + 1
            before = prev = self._prev
            seq = self._seq
            for record_id, timestamp_ns, digest in records:
                seq += 1
                prev = sha256(f"{prev}|{seq}|{record_id}|{timestamp_ns}|{digest}".encode()).hexdigest()
                append(prev)
            self._seq = seq
            self._prev = prev
        return self.chain_id, first, hashes, before

    def unlink_from(self, seq: int, prev_hash: str, count: int) -> bool:
        """Take back links *seq* .. *seq + count - 1* (records the store refused), if nothing was linked
        after them; *prev_hash* is the hash before link *seq*. Returns whether they were taken back (the
        caller's ``ended()`` for them still follows)."""
        with self._lock:
            if count <= 0 or self._seq != seq + count - 1:
                return False
            self._seq = seq - 1
            self._prev = prev_hash
            self._ended -= count
            return True

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
