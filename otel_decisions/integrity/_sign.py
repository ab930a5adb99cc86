"""The one signer: HMAC-SHA256 over a chain head, made at record time and checked by ``verify``.

Example::

    from otel_decisions.integrity import sign, signature_valid

    signature = sign(key, checkpoint_material(chain_id, seq, head_hash))
    assert signature_valid(key, checkpoint_material(chain_id, seq, head_hash), signature)
"""

from __future__ import annotations

import hmac


def sign(key: bytes, material: str) -> str:
    """HMAC-SHA256 (hex) of *material* with *key*."""
    return hmac.digest(key, material.encode(), "sha256").hex()


def signature_valid(key: bytes, material: str, signature: str) -> bool:
    """Whether *signature* is :func:`sign` of *material* with *key* (constant-time comparison)."""
    return hmac.compare_digest(sign(key, material), signature)
