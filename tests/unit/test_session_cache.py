"""The gateway's short memory of confirmed sessions."""

import time

from services.gateway.sessions import SessionCache


def test_a_confirmed_session_is_remembered_until_its_time_is_up():
    cache = SessionCache(ttl=0.05)
    cache.put("token-1", "ref-1")
    assert cache.get("token-1") == "ref-1"
    time.sleep(0.06)
    assert cache.get("token-1") is None


def test_logging_out_forgets_at_once_and_tokens_are_not_kept_in_clear():
    cache = SessionCache(ttl=60)
    cache.put("token-2", "ref-2")
    assert "token-2" not in str(cache._entries._entries)
    cache.forget("token-2")
    assert cache.get("token-2") is None


def test_zero_means_no_memory():
    cache = SessionCache(ttl=0)
    cache.put("token-3", "ref-3")
    assert cache.get("token-3") is None
