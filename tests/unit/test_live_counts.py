"""The member cap's count of a ledger's live memberships: exact near the cap, reused
(with this process's joins added) far from it."""

from __future__ import annotations

import time

from services.member.live_counts import MIN_MARGIN, LiveCounts


class Ledger:
    """A ledger's live memberships as the database would count them."""

    def __init__(self, members: int) -> None:
        self.members = members
        self.counts = 0

    def count(self) -> int:
        self.counts += 1
        return self.members

    def join(self, counts: LiveCounts, cap: int) -> bool:
        """True if let in."""
        if counts.full("L", cap, self.count):
            return False
        self.members += 1
        return True


def test_far_from_the_cap_a_crowd_costs_one_count():
    ledger, counts = Ledger(2_000), LiveCounts(seconds=60)
    assert all(ledger.join(counts, 10_000) for _ in range(300))
    assert ledger.counts == 1
    assert ledger.members == 2_300


def test_near_the_cap_every_join_counts_and_the_cap_holds():
    cap = MIN_MARGIN + 100
    ledger, counts = Ledger(0), LiveCounts(seconds=60)
    results = [ledger.join(counts, cap) for _ in range(cap + 20)]
    assert results == [True] * cap + [False] * 20
    assert ledger.members == cap
    # counted once at the start, then at every join from the margin on
    assert ledger.counts == 1 + (cap + 20 - (cap - MIN_MARGIN - 1))


def test_a_count_is_reused_only_for_its_seconds():
    ledger, counts = Ledger(10), LiveCounts(seconds=0.05)
    ledger.join(counts, 10_000)
    ledger.join(counts, 10_000)
    assert ledger.counts == 1
    time.sleep(0.06)
    ledger.join(counts, 10_000)
    assert ledger.counts == 2


def test_people_who_left_are_found_by_the_next_count():
    # the reused count only overstates: at the cap it counts, and finds the free places
    cap = 700
    ledger, counts = Ledger(cap - MIN_MARGIN - 10), LiveCounts(seconds=60)
    assert ledger.join(counts, cap)
    ledger.members = 0  # everyone left
    assert all(ledger.join(counts, cap) for _ in range(cap))
    assert ledger.members == cap
    assert not ledger.join(counts, cap)


def test_with_no_seconds_every_join_counts():
    ledger, counts = Ledger(5), LiveCounts(seconds=0)
    for _ in range(10):
        ledger.join(counts, 10_000)
    assert ledger.counts == 10
