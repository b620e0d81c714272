"""Join-link tokens: genuine ones read back; tampered, foreign-key or garbage ones don't."""

import uuid

import pytest

from shared.join_links import make_token, read_token

KEY = b"k" * 32


def test_a_token_names_its_ledger_and_version():
    ledger_id = str(uuid.uuid4())
    assert read_token(KEY, make_token(KEY, ledger_id, 7)) == (ledger_id, 7)


def test_every_single_character_change_is_detected():
    token = make_token(KEY, str(uuid.uuid4()), 1)
    for i in range(len(token)):
        changed = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
        assert read_token(KEY, changed) is None


def test_a_second_spelling_of_the_same_bytes_is_refused():
    """The last character carries 2 bits of the token; its other 4 bits are unused and
    must be zero, so a token has exactly one spelling (found by a test failing at random)."""
    token = make_token(KEY, str(uuid.uuid4()), 1)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    for spare in range(1, 16):
        respelled = token[:-1] + alphabet[last ^ spare]
        assert read_token(KEY, respelled) is None


@pytest.mark.parametrize("token", ["", "abc", "!" * 48, None, 12, "A" * 500])
def test_garbage_is_not_a_token(token):
    assert read_token(KEY, token) is None


def test_another_key_does_not_verify():
    assert read_token(b"x" * 32, make_token(KEY, str(uuid.uuid4()), 1)) is None


def test_a_link_with_an_expiry_stops_working_after_it():
    ledger_id = str(uuid.uuid4())
    token = make_token(KEY, ledger_id, 3, expires_at=1_000_000)
    assert read_token(KEY, token, now=999_999) == (ledger_id, 3)
    assert read_token(KEY, token, now=1_000_001) is None
