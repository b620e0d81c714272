"""Ledger work that arrives together is compared together, each ledger once."""

import eventlet
import pytest

from services.healthsync.ledger_work import LedgerWorkGroups


class Recorder:
    """A compare that takes a moment (as a Health Kit call does) and records its groups."""

    def __init__(self, fail_on: str | None = None, pause: float = 0.01) -> None:
        self.groups: list[tuple[str, list[str]]] = []
        self.fail_on = fail_on
        self.pause = pause

    def __call__(self, run_id, ledger_ids):
        self.groups.append((run_id, list(ledger_ids)))
        eventlet.sleep(self.pause)
        if self.fail_on in ledger_ids:
            raise RuntimeError("the database went away")
        return {lid: "done" for lid in ledger_ids}


def _sync_all(groups, compare, work):
    threads = [eventlet.spawn(groups.sync, run_id, ledger_id, compare) for run_id, ledger_id in work]
    results = []
    for t in threads:
        try:
            results.append(t.wait())
        except RuntimeError as exc:
            results.append(exc)
    return results


def test_work_waiting_together_is_compared_in_few_groups_each_ledger_once():
    groups, compare = LedgerWorkGroups(leaders=2, max_ledgers=50), Recorder()
    work = [("run-1", f"ledger-{i}") for i in range(30)]
    assert _sync_all(groups, compare, work) == ["done"] * 30
    compared = [lid for _, ids in compare.groups for lid in ids]
    assert sorted(compared) == sorted(lid for _, lid in work)  # each exactly once
    assert len(compare.groups) <= 3  # two leaders start at once; the third takes the rest
    assert groups.waiting == 0


def test_a_group_holds_at_most_max_ledgers():
    groups, compare = LedgerWorkGroups(leaders=1, max_ledgers=4), Recorder()
    _sync_all(groups, compare, [("run-1", f"ledger-{i}") for i in range(10)])
    assert max(len(ids) for _, ids in compare.groups) == 4
    assert sorted(lid for _, ids in compare.groups for lid in ids) == sorted(f"ledger-{i}" for i in range(10))


def test_work_of_different_runs_is_never_grouped():
    groups, compare = LedgerWorkGroups(leaders=1), Recorder()
    work = [(f"run-{i % 2}", f"ledger-{i}") for i in range(8)]
    assert _sync_all(groups, compare, work) == ["done"] * 8
    for run_id, ids in compare.groups:
        assert {r for r, lid in work if lid in ids} == {run_id}


def test_a_failed_group_fails_every_worker_in_it_and_no_other():
    groups, compare = LedgerWorkGroups(leaders=1, max_ledgers=3), Recorder(fail_on="ledger-4")
    results = _sync_all(groups, compare, [("run-1", f"ledger-{i}") for i in range(6)])
    failed_group = next(ids for _, ids in compare.groups if "ledger-4" in ids)
    for i, result in enumerate(results):
        if f"ledger-{i}" in failed_group:
            assert isinstance(result, RuntimeError)
        else:
            assert result == "done"


def test_what_a_killed_leader_took_is_compared_by_another():
    groups = LedgerWorkGroups(leaders=1, gather=0)
    stuck = Recorder(pause=60)  # the first leader never comes back
    first = eventlet.spawn(groups.sync, "run-1", "ledger-0", stuck)
    others = [eventlet.spawn(groups.sync, "run-1", f"ledger-{i}", Recorder()) for i in (1, 2)]
    eventlet.sleep(0)  # the first leads (taking only its own ledger); the others wait
    eventlet.sleep(0.01)
    first.kill()
    assert [t.wait() for t in others] == ["done", "done"]
    assert groups.waiting == 0


@pytest.mark.parametrize("leaders", [1, 2, 3])
def test_a_waiter_whose_ledger_is_in_a_running_group_does_not_lead_it_again(leaders):
    # groups end at different times: a waiter woken by one group's end must not take its
    # own ledger again while another group still holds it
    groups = LedgerWorkGroups(leaders=leaders, max_ledgers=2)
    pauses = iter([0.05, 0.01, 0.02, 0.01, 0.03, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01])
    seen: list[str] = []

    def compare(run_id, ledger_ids):
        seen.extend(ledger_ids)
        eventlet.sleep(next(pauses, 0.01))
        return {lid: "done" for lid in ledger_ids}

    _sync_all(groups, compare, [("run-1", f"ledger-{i}") for i in range(12)])
    assert sorted(seen) == sorted(f"ledger-{i}" for i in range(12))


def test_ledger_work_that_fails_goes_back_to_the_queue():
    from nameko.events import EventHandler

    from services.healthsync.service import HealthsyncService

    (handler,) = [e for e in HealthsyncService.on_ledger_work.nameko_entrypoints if isinstance(e, EventHandler)]
    assert handler.requeue_on_error  # acked only after its ledger ended: never dropped on an error


@pytest.mark.parametrize("gather", [0.05, 0])
def test_work_arriving_one_by_one_is_gathered_before_a_group_starts(gather):
    # as after a group's end: its acks let the broker send the next messages one by one
    groups, compare = LedgerWorkGroups(leaders=2, max_ledgers=50, gather=gather), Recorder()
    threads = []
    for i in range(10):
        threads.append(eventlet.spawn(groups.sync, "run-1", f"ledger-{i}", compare))
        eventlet.sleep(0.002)
    assert [t.wait() for t in threads] == ["done"] * 10
    assert sorted(lid for _, ids in compare.groups for lid in ids) == sorted(f"ledger-{i}" for i in range(10))
    if gather:
        assert len(compare.groups) == 1
    else:  # without: the first two to arrive lead groups of their own
        assert [len(ids) for _, ids in compare.groups][:2] == [1, 1]
