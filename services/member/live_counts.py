"""How many live memberships a ledger has, for its member cap, without counting the
ledger's rows on every join.

Counting a ledger's pending and active memberships costs more the fuller it is (about
10,000 index entries near the default cap), and a crowd joining one ledger counted it
once per person. Here a count read from the database is reused for ``seconds``, plus
the joins this process let through since, as long as the ledger is far from its cap:
more than ``margin(cap)`` places left, far more than every instance together can admit
in that time. Closer to the cap every join counts afresh, as before (racing joins may
still pass the cap by a few, as they always could). The count only ever overstates
(people who leave, or whose join fails, are not subtracted), so it errs towards
counting."""

from __future__ import annotations

from typing import Callable

from shared.expiring import Expiring

#: seconds a ledger's count is reused
SECONDS = 2.0
#: places left below which every join counts: at least this many, or a tenth of the cap
MIN_MARGIN = 500
MAX_LEDGERS = 10_000


def margin(cap: int) -> int:
    return max(MIN_MARGIN, cap // 10)


class LiveCounts:
    def __init__(self, seconds: float = SECONDS) -> None:
        self._counts = Expiring(seconds, MAX_LEDGERS)

    def full(self, ledger_id: str, cap: int, count: Callable[[], int]) -> bool:
        """Whether the ledger has no place for one more; ``count()`` counts its live
        memberships in the database, and is called only when the count must be exact
        or the one known is too old. A join let through is counted here."""
        known = self._counts.get(ledger_id)
        if known is not None and known[0] + 1 < cap - margin(cap):
            known[0] += 1
            return False
        counted = count()
        if counted >= cap:
            return True
        self._counts.put(ledger_id, [counted + 1])
        return False
