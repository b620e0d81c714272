"""Ledger work that arrives together is compared together.

A run sends one ``healthsync.ledger_work`` message per ledger; most ledgers are small
(a 1,000,000-member run over 10,000 ledgers: ~70 people each to fetch), so comparing
each on its own costs a Health Kit call and about a dozen statements for a few dozen
people. Here the messages a process holds at the same moment form a group, compared in
batches of up to 1,000 people across its ledgers and ended in one transaction (group
commit): the first message's worker leads (after a moment's wait for more to arrive),
taking every waiting ledger of its run; the others wait for its outcome. Each message
is still acked only by its own worker, after the transaction that ended its ledger, so
a crash loses nothing: every unacked message is redelivered and compares only the
people not yet compared.

Plain cooperative code (eventlet greenlets, one hub per process): no thread locks.
"""

from __future__ import annotations

from typing import Callable

import eventlet
from eventlet.event import Event

#: groups compared at the same time in one process: one can wait for the Health Kit
#: while another writes
LEADERS = 2
#: ledgers in one group (their people are compared in batches of up to 1,000)
MAX_LEDGERS = 50
#: seconds a worker that could lead a group smaller than MAX_LEDGERS waits first for
#: more work to arrive: when a group ends, its acks let the broker send the next
#: messages one by one, and the first to arrive would otherwise lead a group of one
GATHER_S = 0.005

Compare = Callable[[str, list[str]], dict[str, str]]


class _Work:
    __slots__ = ("run_id", "ledger_id", "taken", "outcome", "error")

    def __init__(self, run_id: str, ledger_id: str) -> None:
        self.run_id = run_id
        self.ledger_id = ledger_id
        self.taken = False  # in a group being compared
        self.outcome: str | None = None
        self.error: BaseException | None = None

    @property
    def settled(self) -> bool:
        return self.outcome is not None or self.error is not None


class LedgerWorkGroups:
    def __init__(self, leaders: int = LEADERS, max_ledgers: int = MAX_LEDGERS, gather: float = GATHER_S) -> None:
        self.leaders = leaders
        self.max_ledgers = max_ledgers
        self.gather = gather
        self._waiting: list[_Work] = []
        self._leading = 0
        self._round = Event()  # sent (and replaced) whenever a group ends

    def sync(self, run_id: str, ledger_id: str, compare: Compare) -> str:
        """This ledger's outcome in the run (done | failed | skipped), compared in a
        group with whatever work of the same run is waiting; ``compare(run_id,
        ledger_ids)`` is the caller's (it runs on the caller's session if it leads)."""
        mine = _Work(run_id, ledger_id)
        self._waiting.append(mine)
        gathered = not self.gather
        try:
            while not mine.settled:
                if not mine.taken and self._leading < self.leaders:
                    if not gathered and self._same_run(mine) < self.max_ledgers:
                        gathered = True
                        eventlet.sleep(self.gather)  # another may lead (and take this) meanwhile
                        continue
                    self._lead(mine, compare)
                else:
                    self._round.wait()
        finally:
            if mine in self._waiting:  # its worker was killed while waiting
                self._waiting.remove(mine)
        if mine.error is not None:
            raise mine.error
        return mine.outcome

    def _same_run(self, mine: _Work) -> int:
        return sum(1 for w in self._waiting if w.run_id == mine.run_id)  # waiting: not taken

    def _lead(self, mine: _Work, compare: Compare) -> None:
        same_run = [w for w in self._waiting if w is not mine and w.run_id == mine.run_id]
        group = [mine, *same_run[: self.max_ledgers - 1]]
        for w in group:
            w.taken = True
        self._waiting = [w for w in self._waiting if not w.taken]
        self._leading += 1
        try:
            outcomes = compare(mine.run_id, [w.ledger_id for w in group])
            for w in group:
                w.outcome = outcomes[w.ledger_id]
        except Exception as exc:  # every worker of the group fails (its message goes back)
            for w in group:
                w.error = exc
        finally:
            self._leading -= 1
            # the leader was killed mid-group: what it took waits for another leader
            unsettled = [w for w in group if not w.settled]
            for w in unsettled:
                w.taken = False
            self._waiting[:0] = [w for w in unsettled if w is not mine]
            ended, self._round = self._round, Event()
            ended.send()

    @property
    def waiting(self) -> int:
        return len(self._waiting)
