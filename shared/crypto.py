"""The one crypto module: encryption at rest, blind indexes, sealed transit, code digests.

DESIGN.md ("Personal data", "Security rules") asks for:

- storage encrypted with AES-256-GCM, the key id inside the ciphertext so keys rotate
  (:class:`Cipher`);
- lookups by a keyed blind index (HMAC-SHA256 with its own secret), never an unkeyed
  hash, because ID numbers and phones come from small, brute-forceable spaces; the
  person reference shared between services is the blind index of the ID number
  (:func:`blind_index`, :meth:`Crypto.person_ref`, :meth:`Crypto.phone_index`);
- per-ledger data keys wrapped by the master key, so destroying a ledger's wrapped
  key makes every copy of its members' data unreadable (:meth:`Crypto.new_data_key`);
- personal data that must travel on the bus or in an RPC payload sealed for the one
  service that may read it (:meth:`Crypto.seal` / :meth:`Crypto.unseal`);
- SMS codes stored only as a keyed digest bound to their challenge
  (:meth:`Crypto.code_digest`).

Every service uses these, so they all agree on formats. Nothing here logs, and no
error message carries a plaintext, a key or a blob.

Ciphertext format (version 1)::

    b"\\x01" | len(key_id) (1 byte) | key_id (ASCII) | nonce (12 bytes) | ciphertext+tag

The header (version and key id) is authenticated together with the caller's AAD.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from functools import lru_cache
from typing import Any, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.config import Settings, settings
from shared.validation import validate_id_number, validate_phone

VERSION = 1
NONCE_SIZE = 12
KEY_SIZE = 32
TAG_SIZE = 16
DATA_KEY_ID = "d"
TRANSIT_KEY_ID = "t"


class DecryptionError(Exception):
    """A blob could not be decrypted: unknown key id, bad version or format, or tampering
    (including the wrong key, AAD or recipient)."""


def _to_bytes(value: bytes | bytearray | memoryview | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


class Cipher:
    """AES-256-GCM with key ids: encrypts under the current key, decrypts under any.

    ``keys`` maps key id (ASCII, 1-255 characters) to a 32-byte key; ``current_key_id``
    names the one new data is encrypted with. Keep retired keys in ``keys`` for as long
    as data encrypted under them exists.
    """

    def __init__(self, keys: Mapping[str, bytes], current_key_id: str) -> None:
        if current_key_id not in keys:
            raise ValueError("the current key id is not among the keys")
        self._aead: dict[str, AESGCM] = {}
        for key_id, key in keys.items():
            if not key_id or len(key_id) > 255 or not key_id.isascii():
                raise ValueError("key ids are 1 to 255 ASCII characters")
            if len(key) != KEY_SIZE:
                raise ValueError("AES-256 keys are 32 bytes")
            self._aead[key_id] = AESGCM(bytes(key))
        self._current = current_key_id
        self._header = bytes([VERSION, len(current_key_id)]) + current_key_id.encode(
            "ascii"
        )

    @property
    def current_key_id(self) -> str:
        return self._current

    @property
    def current_prefix(self) -> bytes:
        """The bytes every blob encrypted under the current key begins with (to find,
        in SQL, the ones that are not)."""
        return self._header

    def __repr__(self) -> str:
        return f"Cipher(key_ids={sorted(self._aead)!r}, current={self._current!r})"

    def encrypt(self, plaintext: bytes | str, aad: bytes = b"") -> bytes:
        """Encrypt under the current key with a fresh random nonce; str is UTF-8 encoded."""
        nonce = os.urandom(NONCE_SIZE)
        sealed = self._aead[self._current].encrypt(
            nonce, _to_bytes(plaintext), self._header + bytes(aad)
        )
        return self._header + nonce + sealed

    def decrypt(self, blob: bytes, aad: bytes = b"") -> bytes:
        """Decrypt a blob made by :meth:`encrypt` under any known key id.

        Accepts bytes, bytearray or memoryview (psycopg2 returns bytea as memoryview).
        Raises :class:`DecryptionError` on a bad version, unknown key id or tampering.
        """
        key_id, header, body = self._split(blob)
        aead = self._aead.get(key_id)
        if aead is None:
            raise DecryptionError(f"unknown key id {key_id!r}")
        try:
            return aead.decrypt(
                body[:NONCE_SIZE], body[NONCE_SIZE:], header + bytes(aad)
            )
        except InvalidTag:
            raise DecryptionError(
                "the ciphertext or its associated data was altered"
            ) from None

    def encrypt_text(self, text: str, aad: bytes = b"") -> bytes:
        """Encrypt a string (UTF-8)."""
        return self.encrypt(text.encode("utf-8"), aad)

    def decrypt_text(self, blob: bytes, aad: bytes = b"") -> str:
        """Decrypt a blob made by :meth:`encrypt_text`."""
        try:
            return self.decrypt(blob, aad).decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptionError("the plaintext is not UTF-8") from None

    @staticmethod
    def key_id_of(blob: bytes) -> str:
        """The key id a blob was encrypted under (to find data to re-encrypt after rotation)."""
        return Cipher._split(blob)[0]

    @staticmethod
    def _split(blob: bytes) -> tuple[str, bytes, bytes]:
        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise DecryptionError("a ciphertext is bytes")
        blob = bytes(blob)
        if len(blob) < 2 or blob[0] != VERSION:
            raise DecryptionError("unknown ciphertext version")
        end = 2 + blob[1]
        if blob[1] == 0 or len(blob) < end + NONCE_SIZE + TAG_SIZE:
            raise DecryptionError("the ciphertext is truncated")
        try:
            key_id = blob[2:end].decode("ascii")
        except UnicodeDecodeError:
            raise DecryptionError("the key id is malformed") from None
        return key_id, blob[:end], blob[end:]


def blind_index(key: bytes, purpose: str, value: str) -> str:
    """Keyed blind index: hex HMAC-SHA256 of ``purpose + "\\x00" + value``.

    The purpose separates index spaces, so an ID index never equals a phone index.
    """
    if "\x00" in purpose:
        raise ValueError("a purpose may not contain NUL")
    message = purpose.encode("utf-8") + b"\x00" + value.encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not isinstance(text, str) or not text.isascii():
        raise DecryptionError("a sealed token is URL-safe base64 text")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise DecryptionError("a sealed token is URL-safe base64 text") from None


class Crypto:
    """Tuantibu's keys put to use; build one from :class:`~shared.config.Settings`.

    ``master`` is the master-key :class:`Cipher` (it wraps per-ledger data keys).
    """

    def __init__(self, config: Settings) -> None:
        self.master = Cipher(config.master_keys, config.master_key_id)
        self._blind_index_key = config.blind_index_key
        self._transit_secret = config.transit_secret
        self._code_hmac_key = config.code_hmac_key
        self._transit: dict[str, Cipher] = {}

    def __repr__(self) -> str:
        return f"Crypto(master={self.master!r})"

    # -- blind indexes -------------------------------------------------------------

    def person_ref(self, id_type: str, id_number: str) -> str:
        """The cross-service person reference (64 hex characters).

        The blind index, purpose ``"person:" + id_type``, of the number as
        :func:`~shared.validation.validate_id_number` normalises it (so spelling
        variants give one reference); an invalid number raises its ``FieldError``.
        """
        number = validate_id_number(id_type, id_number)
        return blind_index(
            self._blind_index_key, "person:" + id_type.strip().lower(), number
        )

    def phone_index(self, phone: str) -> str:
        """The blind index (purpose ``"phone"``) of a mobile number, normalised by
        :func:`~shared.validation.validate_phone` (so ``+86 138…`` equals ``138…``)."""
        return blind_index(self._blind_index_key, "phone", validate_phone(phone))

    # -- sealed transit --------------------------------------------------------------

    def _transit_cipher(self, recipient: str) -> Cipher:
        cipher = self._transit.get(recipient)
        if cipher is None:
            key = HKDF(
                algorithm=hashes.SHA256(),
                length=KEY_SIZE,
                salt=None,
                info=b"transit:" + recipient.encode("utf-8"),
            ).derive(self._transit_secret)
            cipher = self._transit[recipient] = Cipher(
                {TRANSIT_KEY_ID: key}, TRANSIT_KEY_ID
            )
        return cipher

    def seal(self, recipient: str, payload: dict[str, Any]) -> str:
        """Encrypt a JSON-able dict so only service ``recipient`` can read it.

        The key is derived per recipient from the transit secret (HKDF-SHA256, info
        ``b"transit:" + recipient``) and the recipient is the AAD. Returns URL-safe
        base64 text (unpadded) for an event or RPC payload.
        """
        if not isinstance(payload, dict):
            raise TypeError("a sealed payload is a dict")
        plaintext = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        blob = self._transit_cipher(recipient).encrypt(
            plaintext, aad=recipient.encode("utf-8")
        )
        return _b64encode(blob)

    def unseal(self, recipient: str, token: str) -> dict[str, Any]:
        """Open a token made by :meth:`seal` for ``recipient``.

        Raises :class:`DecryptionError` if it was sealed for another recipient,
        altered, or is not a token at all.
        """
        blob = _b64decode(token)
        plaintext = self._transit_cipher(recipient).decrypt_text(
            blob, aad=recipient.encode("utf-8")
        )
        try:
            payload = json.loads(plaintext)
        except ValueError:
            raise DecryptionError("the sealed payload is not JSON") from None
        if not isinstance(payload, dict):
            raise DecryptionError("the sealed payload is not an object")
        return payload

    # -- per-ledger data keys -----------------------------------------------------------

    def new_data_key(self, scope: str) -> tuple[bytes, bytes]:
        """A fresh 32-byte data key and that key wrapped by the master key for ``scope``
        (e.g. a ledger id; it is the AAD, so the wrapped key only opens for that scope)."""
        data_key = os.urandom(KEY_SIZE)
        return data_key, self.master.encrypt(data_key, aad=scope.encode("utf-8"))

    def unwrap_data_key(self, scope: str, wrapped: bytes) -> bytes:
        """The data key inside ``wrapped``; :class:`DecryptionError` if the scope is wrong."""
        data_key = self.master.decrypt(wrapped, aad=scope.encode("utf-8"))
        if len(data_key) != KEY_SIZE:
            raise DecryptionError("the wrapped value is not a data key")
        return data_key

    def open_data_key(self, scope: str, wrapped: bytes) -> "Cipher":
        """The cipher of a wrapped data key (unwrap, then :meth:`data_cipher`)."""
        return self.data_cipher(self.unwrap_data_key(scope, wrapped))

    @staticmethod
    def data_cipher(data_key: bytes) -> Cipher:
        """A :class:`Cipher` over one data key (key id ``"d"``)."""
        return Cipher({DATA_KEY_ID: data_key}, DATA_KEY_ID)

    # -- SMS codes ---------------------------------------------------------------------

    def code_digest(self, challenge_id: str, code: str) -> str:
        """Hex HMAC-SHA256 (code HMAC key) of ``challenge_id + ":" + code``: the only
        form in which an SMS code is stored, bound to its challenge."""
        message = f"{challenge_id}:{code}".encode("utf-8")
        return hmac.new(self._code_hmac_key, message, hashlib.sha256).hexdigest()

    def code_matches(self, challenge_id: str, code: str, digest: str) -> bool:
        """Whether ``code`` is the one whose digest was stored (constant-time compare)."""
        return hmac.compare_digest(self.code_digest(challenge_id, code), digest)


@lru_cache(maxsize=1)
def crypto() -> Crypto:
    """The process-wide :class:`Crypto`, built once from :func:`shared.config.settings`."""
    return Crypto(settings())
