"""The gateway's waiter: a request waiting for an event is woken by it, whether the
event comes during the wait or just before it."""

import eventlet

from services.gateway.waiter import Waiter


def test_an_event_during_the_wait_wakes_it():
    waiter = Waiter()
    eventlet.spawn_after(0.05, waiter.deliver, ("challenge", "c1"), {"sent": True})
    assert waiter.wait(("challenge", "c1"), 2) == {"sent": True}


def test_an_event_just_before_the_wait_is_not_missed():
    waiter = Waiter()
    waiter.deliver(("challenge", "c2"), {"rejected": True})
    assert waiter.wait(("challenge", "c2"), 0.01) == {"rejected": True}


def test_no_event_means_none_after_the_timeout():
    assert Waiter().wait(("challenge", "c3"), 0.05) is None


def test_the_first_of_several_events_wins():
    waiter = Waiter()
    eventlet.spawn_after(0.05, waiter.deliver, ("owner_changed", "l1"), {"role": "owner"})
    assert waiter.wait_any([("ledger_closed", "l1"), ("owner_changed", "l1")], 2) == (("owner_changed", "l1"), {"role": "owner"})
    assert not waiter._waiting  # nothing left behind
