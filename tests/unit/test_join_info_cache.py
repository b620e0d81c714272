"""The gateway's short memory of what join links show."""

import time

from services.gateway.join_infos import JoinInfoCache


def test_a_link_is_remembered_until_its_time_is_up():
    cache = JoinInfoCache(ttl=0.05)
    cache.put("link-1", {"ledger_id": "L1", "status": "active"})
    assert cache.get("link-1") == {"ledger_id": "L1", "status": "active"}
    time.sleep(0.06)
    assert cache.get("link-1") is None


def test_forgetting_a_ledger_forgets_all_its_links_and_only_them():
    cache = JoinInfoCache(ttl=60)
    cache.put("old-link", {"ledger_id": "L1"})
    cache.put("new-link", {"ledger_id": "L1"})
    cache.put("other", {"ledger_id": "L2"})
    cache.forget_ledger("L1")
    assert cache.get("old-link") is None and cache.get("new-link") is None
    assert cache.get("other") == {"ledger_id": "L2"}


def test_zero_means_no_memory():
    cache = JoinInfoCache(ttl=0)
    cache.put("link-3", {"ledger_id": "L3"})
    assert cache.get("link-3") is None
