"""Join links: the signed token a ledger's QR code carries.

A token is ``base64url(ledger_id (16 bytes) ‖ version (4) ‖ expires (4) ‖ mac (16))``
where ``expires`` is a Unix time after which the link stops working (0: never) and
``mac`` is HMAC-SHA256 (truncated) over the first 24 bytes with the QR signing key.
Rotating the QR bumps the ledger's version, so older tokens stop working; a tampered
token fails the MAC. Callers see the same ``None`` for tampered, rotated, expired and
unknown tokens, so nothing helps forging.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time
import uuid

_MAC_BYTES = 16


_BODY = 24


def make_token(key: bytes, ledger_id: str, version: int, expires_at: int = 0) -> str:
    body = uuid.UUID(ledger_id).bytes + struct.pack(">II", version, expires_at)
    mac = hmac.new(key, body, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(body + mac).decode().rstrip("=")


def read_token(key: bytes, token: str, now: float | None = None) -> tuple[str, int] | None:
    """The (ledger_id, version) a genuine, unexpired token names, or None."""
    if not isinstance(token, str) or len(token) > 80:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        return None
    if len(raw) != _BODY + _MAC_BYTES:
        return None
    # one spelling per token: the last character's unused bits must not give a second
    if base64.urlsafe_b64encode(raw).decode().rstrip("=") != token:
        return None
    body, mac = raw[:_BODY], raw[_BODY:]
    if not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).digest()[:_MAC_BYTES]):
        return None
    version, expires_at = struct.unpack(">II", body[16:])
    if expires_at and (time.time() if now is None else now) > expires_at:
        return None
    return str(uuid.UUID(bytes=body[:16])), version
