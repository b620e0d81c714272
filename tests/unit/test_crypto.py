"""Unit tests for shared.crypto: encryption at rest, blind indexes, sealing, code digests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

import pytest

from shared import config
from shared.config import load_settings
from shared.crypto import Cipher, Crypto, DecryptionError, blind_index, crypto
from shared.validation import FieldError

KEY_A = bytes(range(32))
KEY_B = bytes(range(32, 64))
HEX64 = re.compile(r"[0-9a-f]{64}")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


@pytest.fixture
def dev() -> Crypto:
    return Crypto(load_settings({}))


@pytest.fixture
def other() -> Crypto:
    """A Crypto with every secret different from the dev defaults."""
    return Crypto(
        load_settings(
            {
                "TUANTIBU_MASTER_KEYS": f"k1:{_b64(KEY_A)}",
                "BLIND_INDEX_KEY": _b64(os.urandom(32)),
                "TRANSIT_SECRET": _b64(os.urandom(32)),
                "CODE_HMAC_KEY": _b64(os.urandom(32)),
            }
        )
    )


# -- Cipher -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plaintext", [b"", b"x", "11010519491231002X", "张三", os.urandom(1000)]
)
def test_round_trip(plaintext):
    cipher = Cipher({"a": KEY_A}, "a")
    blob = cipher.encrypt(plaintext)
    expected = plaintext.encode() if isinstance(plaintext, str) else plaintext
    assert cipher.decrypt(blob) == expected
    if len(expected) >= 8:  # a shorter plaintext may occur in random bytes by chance
        assert expected not in blob


def test_blob_format():
    blob = Cipher({"key7": KEY_A}, "key7").encrypt(b"hello", aad=b"ctx")
    assert blob[0] == 1
    assert blob[1] == 4
    assert blob[2:6] == b"key7"
    assert len(blob) == 1 + 1 + 4 + 12 + len(b"hello") + 16
    assert Cipher.key_id_of(blob) == "key7"


def test_nonce_is_fresh_each_time():
    cipher = Cipher({"a": KEY_A}, "a")
    assert cipher.encrypt(b"same") != cipher.encrypt(b"same")


def test_text_round_trip_and_memoryview():
    cipher = Cipher({"a": KEY_A}, "a")
    blob = cipher.encrypt_text("欧阳娜娜", aad=b"m1")
    assert cipher.decrypt_text(memoryview(blob), aad=b"m1") == "欧阳娜娜"
    assert cipher.decrypt_text(bytearray(blob), aad=b"m1") == "欧阳娜娜"


def test_key_rotation_still_decrypts_old_data():
    old = Cipher({"a": KEY_A}, "a")
    blob_a = old.encrypt(b"before rotation", aad=b"ctx")
    rotated = Cipher({"a": KEY_A, "b": KEY_B}, "b")
    assert rotated.current_key_id == "b"
    assert rotated.decrypt(blob_a, aad=b"ctx") == b"before rotation"
    blob_b = rotated.encrypt(b"after rotation", aad=b"ctx")
    assert Cipher.key_id_of(blob_b) == "b"
    assert rotated.decrypt(blob_b, aad=b"ctx") == b"after rotation"
    with pytest.raises(DecryptionError, match="unknown key id"):
        old.decrypt(blob_b, aad=b"ctx")


def _flip(blob: bytes, index: int) -> bytes:
    return blob[:index] + bytes([blob[index] ^ 0x01]) + blob[index + 1 :]


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda b: _flip(b, len(b) - 1), id="tag"),
        pytest.param(lambda b: _flip(b, len(b) - 20), id="ciphertext"),
        pytest.param(lambda b: _flip(b, 4), id="nonce"),
        pytest.param(lambda b: _flip(b, 0), id="version"),
        pytest.param(lambda b: _flip(b, 2), id="key-id"),
        pytest.param(lambda b: b[:-1], id="truncated"),
        pytest.param(lambda b: b[:10], id="very-truncated"),
        pytest.param(lambda b: b + b"\x00", id="extended"),
        pytest.param(lambda b: b"", id="empty"),
        pytest.param(lambda b: b"\x01\x00" + b[3:], id="empty-key-id"),
        pytest.param(lambda b: b"\x01\x01\xff" + b[3:], id="non-ascii-key-id"),
    ],
)
def test_tampering_raises_decryption_error(tamper):
    cipher = Cipher({"a": KEY_A, "b": KEY_B}, "a")
    blob = cipher.encrypt(b"some personal data", aad=b"ctx")
    with pytest.raises(DecryptionError):
        cipher.decrypt(tamper(blob), aad=b"ctx")


def test_wrong_aad_raises_decryption_error():
    cipher = Cipher({"a": KEY_A}, "a")
    blob = cipher.encrypt(b"data", aad=b"ledger-1")
    with pytest.raises(DecryptionError):
        cipher.decrypt(blob, aad=b"ledger-2")
    with pytest.raises(DecryptionError):
        cipher.decrypt(blob)


def test_same_key_id_with_other_key_raises_decryption_error():
    blob = Cipher({"a": KEY_A}, "a").encrypt(b"data")
    with pytest.raises(DecryptionError):
        Cipher({"a": KEY_B}, "a").decrypt(blob)


def test_decrypt_rejects_non_bytes():
    with pytest.raises(DecryptionError):
        Cipher({"a": KEY_A}, "a").decrypt("not bytes")  # type: ignore[arg-type]


def test_decrypt_text_rejects_non_utf8_plaintext():
    cipher = Cipher({"a": KEY_A}, "a")
    with pytest.raises(DecryptionError):
        cipher.decrypt_text(cipher.encrypt(b"\xff\xfe"))


@pytest.mark.parametrize(
    "keys, current",
    [
        ({"a": KEY_A}, "b"),
        ({"a": b"short"}, "a"),
        ({"": KEY_A}, ""),
        ({"ключ": KEY_A}, "ключ"),
        ({"x" * 256: KEY_A}, "x" * 256),
    ],
)
def test_cipher_rejects_bad_keys(keys, current):
    with pytest.raises(ValueError):
        Cipher(keys, current)


def test_cipher_repr_shows_no_key_material():
    text = repr(Cipher({"a": KEY_A}, "a"))
    assert KEY_A.hex() not in text and repr(KEY_A) not in text


# -- blind index --------------------------------------------------------------------


def test_blind_index_is_hmac_sha256_over_purpose_nul_value():
    expected = hmac.new(KEY_A, b"phone\x0013812345678", hashlib.sha256).hexdigest()
    assert blind_index(KEY_A, "phone", "13812345678") == expected


def test_blind_index_is_deterministic_purpose_separated_and_keyed():
    value = "11010519491231002X"
    first = blind_index(KEY_A, "person:resident_id", value)
    assert HEX64.fullmatch(first)
    assert blind_index(KEY_A, "person:resident_id", value) == first
    assert blind_index(KEY_A, "phone", value) != first
    assert blind_index(KEY_B, "person:resident_id", value) != first
    # the separator keeps (purpose, value) pairs apart
    assert blind_index(KEY_A, "ab", "c") != blind_index(KEY_A, "a", "bc")


def test_blind_index_rejects_nul_in_purpose():
    with pytest.raises(ValueError):
        blind_index(KEY_A, "a\x00b", "c")


def test_person_ref(dev, other):
    ref = dev.person_ref("resident_id", "11010519491231002X")
    assert HEX64.fullmatch(ref)
    assert "11010519491231002X" not in ref
    assert dev.person_ref("resident_id", " 11010519491231002x ") == ref
    assert dev.person_ref("resident_id", "110101199003070011") != ref
    assert other.person_ref("resident_id", "11010519491231002X") != ref
    assert (
        Crypto(load_settings({})).person_ref("resident_id", "11010519491231002X") == ref
    )


def test_person_ref_is_separated_by_id_type(dev):
    assert dev.person_ref("passport", "12345678") != dev.person_ref(
        "taiwan_permit", "12345678"
    )


@pytest.mark.parametrize(
    "id_type, number",
    [("resident_id", "110105194912310021"), ("visa", "E12345678"), ("passport", "")],
)
def test_person_ref_rejects_invalid_numbers(dev, id_type, number):
    with pytest.raises(FieldError):
        dev.person_ref(id_type, number)


def test_phone_index(dev, other):
    index = dev.phone_index("13812345678")
    assert HEX64.fullmatch(index)
    assert dev.phone_index("+86 138-1234-5678") == index
    assert dev.phone_index("13812345679") != index
    assert other.phone_index("13812345678") != index
    assert index != blind_index(
        load_settings({}).blind_index_key, "person:resident_id", "13812345678"
    )
    with pytest.raises(FieldError):
        dev.phone_index("23812345678")


# -- sealed transit -----------------------------------------------------------------


def test_seal_round_trip(dev):
    payload = {
        "id_type": "resident_id",
        "id_number": "11010519491231002X",
        "n": [1, None],
    }
    token = dev.seal("healthsync", payload)
    assert isinstance(token, str)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert "11010519491231002X" not in token
    assert dev.unseal("healthsync", token) == payload
    assert Crypto(load_settings({})).unseal("healthsync", token) == payload


def test_seal_for_wrong_recipient_fails(dev):
    token = dev.seal("healthsync", {"id_number": "11010519491231002X"})
    for recipient in ("verify", "member", "healthsync2", ""):
        with pytest.raises(DecryptionError):
            dev.unseal(recipient, token)


def test_seal_with_other_transit_secret_fails(dev, other):
    token = dev.seal("healthsync", {"a": 1})
    with pytest.raises(DecryptionError):
        other.unseal("healthsync", token)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(
            lambda t: t[:-2] + ("A" if t[-2] != "A" else "B") + t[-1], id="flip"
        ),
        pytest.param(lambda t: t[:-4], id="truncated"),
        pytest.param(lambda t: "", id="empty"),
        pytest.param(lambda t: "!!!not base64!!!", id="garbage"),
        pytest.param(lambda t: "a", id="bad-padding"),
        pytest.param(lambda t: "测试", id="non-ascii"),
        pytest.param(lambda t: None, id="none"),
    ],
)
def test_unseal_tampered_token_fails(dev, mangle):
    token = dev.seal("verify", {"phone": "13812345678"})
    with pytest.raises(DecryptionError):
        dev.unseal("verify", mangle(token))


def test_unseal_accepts_padded_token(dev):
    token = dev.seal("verify", {"x": "y"})
    padded = token + "=" * (-len(token) % 4)
    assert dev.unseal("verify", padded) == {"x": "y"}


def test_seal_requires_a_dict(dev):
    with pytest.raises(TypeError):
        dev.seal("verify", ["not", "a", "dict"])  # type: ignore[arg-type]


def test_unseal_rejects_a_non_object_payload(dev):
    # sealed correctly, but not a JSON object: built with the same transit cipher
    blob = dev._transit_cipher("verify").encrypt(b"[1, 2]", aad=b"verify")
    token = base64.urlsafe_b64encode(blob).decode()
    with pytest.raises(DecryptionError):
        dev.unseal("verify", token)


# -- data keys ----------------------------------------------------------------------


def test_data_key_wrap_and_unwrap(dev):
    data_key, wrapped = dev.new_data_key("ledger:42")
    assert len(data_key) == 32
    assert data_key not in wrapped
    assert Cipher.key_id_of(wrapped) == dev.master.current_key_id
    assert dev.unwrap_data_key("ledger:42", wrapped) == data_key
    assert dev.new_data_key("ledger:42")[0] != data_key


def test_unwrap_with_wrong_scope_fails(dev):
    _, wrapped = dev.new_data_key("ledger:42")
    with pytest.raises(DecryptionError):
        dev.unwrap_data_key("ledger:43", wrapped)


def test_unwrap_with_other_master_key_fails(dev, other):
    _, wrapped = dev.new_data_key("ledger:42")
    with pytest.raises(DecryptionError):
        other.unwrap_data_key("ledger:42", wrapped)


def test_master_key_rotation_keeps_wrapped_keys_readable():
    before = Crypto(load_settings({"TUANTIBU_MASTER_KEYS": f"k1:{_b64(KEY_A)}"}))
    data_key, wrapped = before.new_data_key("ledger:1")
    after = Crypto(
        load_settings({"TUANTIBU_MASTER_KEYS": f"k1:{_b64(KEY_A)},k2:{_b64(KEY_B)}"})
    )
    assert after.master.current_key_id == "k2"
    assert after.unwrap_data_key("ledger:1", wrapped) == data_key
    assert Cipher.key_id_of(after.new_data_key("ledger:1")[1]) == "k2"


def test_data_cipher(dev):
    data_key, _ = dev.new_data_key("ledger:1")
    cipher = dev.data_cipher(data_key)
    assert cipher.current_key_id == "d"
    blob = cipher.encrypt_text("13812345678", aad=b"member:7")
    assert Cipher.key_id_of(blob) == "d"
    assert (
        dev.data_cipher(data_key).decrypt_text(blob, aad=b"member:7") == "13812345678"
    )
    with pytest.raises(DecryptionError):
        dev.data_cipher(os.urandom(32)).decrypt_text(blob, aad=b"member:7")


# -- SMS code digests ---------------------------------------------------------------


def test_code_digest(dev, other):
    digest = dev.code_digest("ch-1", "123456")
    expected = hmac.new(
        load_settings({}).code_hmac_key, b"ch-1:123456", hashlib.sha256
    ).hexdigest()
    assert digest == expected
    assert HEX64.fullmatch(digest)
    assert dev.code_digest("ch-1", "123456") == digest
    assert dev.code_digest("ch-2", "123456") != digest  # bound to its challenge
    assert dev.code_digest("ch-1", "123457") != digest
    assert other.code_digest("ch-1", "123456") != digest
    assert dev.code_matches("ch-1", "123456", digest)
    assert not dev.code_matches("ch-1", "654321", digest)


# -- process-wide instance ----------------------------------------------------------


def test_crypto_is_cached_over_settings(monkeypatch):
    for name in ("TUANTIBU_MODE", "TUANTIBU_MASTER_KEYS", "TUANTIBU_MASTER_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    config.settings.cache_clear()
    crypto.cache_clear()
    try:
        first = crypto()
        assert first is crypto()
        assert isinstance(first, Crypto)
        assert first.master.current_key_id == config.settings().master_key_id
    finally:
        config.settings.cache_clear()
        crypto.cache_clear()


def test_crypto_repr_shows_no_key_material(dev):
    settings = load_settings({})
    text = repr(dev)
    for secret in (
        settings.blind_index_key,
        settings.transit_secret,
        settings.code_hmac_key,
    ):
        assert secret.hex() not in text and repr(secret) not in text
