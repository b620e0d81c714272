"""Join links: the signed token a ledger's QR code carries.

A token is ``base64url(ledger_id (16 bytes) ‖ version (4 bytes) ‖ mac (16 bytes))``
where ``mac`` is HMAC-SHA256 (truncated) over the first 20 bytes with the QR signing
key. Rotating the QR bumps the ledger's version, so older tokens stop working; a
tampered token fails the MAC. Callers see the same ``None`` for tampered, rotated and
unknown tokens, so nothing helps forging.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import uuid

_MAC_BYTES = 16


def make_token(key: bytes, ledger_id: str, version: int) -> str:
    body = uuid.UUID(ledger_id).bytes + struct.pack(">I", version)
    mac = hmac.new(key, body, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(body + mac).decode().rstrip("=")


def read_token(key: bytes, token: str) -> tuple[str, int] | None:
    """The (ledger_id, version) a genuine token names, or None."""
    if not isinstance(token, str) or len(token) > 64:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        return None
    if len(raw) != 20 + _MAC_BYTES:
        return None
    body, mac = raw[:20], raw[20:]
    if not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).digest()[:_MAC_BYTES]):
        return None
    return str(uuid.UUID(bytes=body[:16])), struct.unpack(">I", body[16:])[0]
