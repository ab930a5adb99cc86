"""Integrity: canonical stored-text rendering, the record digest, the per-process hash chain and the
one signer for its checkpoints. ``otel_decisions.verify`` checks stored records against them.

Example::

    from otel_decisions.integrity import HashChain, record_digest

    chain = HashChain()
    chain_id, seq, chain_hash, prev_hash = chain.link(record_id, timestamp_ns, record_digest(attributes))
"""

from otel_decisions.integrity._chain import (
    UNHASHED_PREFIXES,
    HashChain,
    RecordDigester,
    chain_material,
    checkpoint_material,
    kept_digest,
    links_digest,
    operation_material,
    record_digest,
)
from otel_decisions.integrity._render import attribute_to_string
from otel_decisions.integrity._sign import sign, signature_valid

__all__ = [
    "UNHASHED_PREFIXES",
    "HashChain",
    "RecordDigester",
    "attribute_to_string",
    "chain_material",
    "checkpoint_material",
    "kept_digest",
    "links_digest",
    "operation_material",
    "record_digest",
    "sign",
    "signature_valid",
]
