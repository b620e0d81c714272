"""The event contracts list exactly the handlers the services declare, and every error
maps to one HTTP status."""

from __future__ import annotations

import importlib

import pytest
from nameko.events import EventHandler

from services.gateway.errors import status_for
from shared import errors
from shared.events import CONTRACTS
from shared.handling import handles

SERVICES = ("org", "verify", "member", "healthsync")


def declared_handlers() -> set[tuple[str, str, str]]:
    """(event_type, service, method) of every durable event handler in the services."""
    found = set()
    for service in SERVICES:
        module = importlib.import_module(f"services.{service}.service")
        cls = next(v for v in vars(module).values() if isinstance(v, type) and getattr(v, "name", None) == service)
        for attr, value in vars(cls).items():
            for entrypoint in getattr(value, "nameko_entrypoints", ()):
                if isinstance(entrypoint, EventHandler) and entrypoint.reliable_delivery:
                    found.add((f"{entrypoint.source_service}.{entrypoint.event_type}", service, attr))
    return found


def test_contracts_list_exactly_the_declared_handlers():
    listed = {(c.event_type, s.service, s.method) for c in CONTRACTS.values() for s in c.subscribers}
    assert listed == declared_handlers()


def test_unknown_events_cannot_be_handled():
    with pytest.raises(KeyError):
        handles("org.no_such_event")


@pytest.mark.parametrize(
    "error, status",
    [
        (errors.InvalidInput(), 400),
        (errors.Unauthenticated(), 401),
        (errors.Forbidden(), 403),
        (errors.NotFound(), 404),
        (errors.Conflict(), 409),
        (errors.CodeExpired(), 410),
        (errors.LedgerClosed(), 410),
        (errors.IdentityRejected(), 422),
        (errors.WrongCode(), 422),
        (errors.TooManyAttempts(), 429),
        (errors.RateLimited(), 429),
        (errors.Unavailable(), 503),
        (errors.TuantibuError(), 500),
    ],
)
def test_every_error_has_its_status(error, status):
    assert status_for(error) == status


def test_every_error_class_is_in_the_table():
    from services.gateway.errors import HTTP_STATUS

    tabled = {cls for cls, _ in HTTP_STATUS}
    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, errors.TuantibuError):
            assert value in tabled or any(issubclass(value, t) and t is not errors.TuantibuError for t in tabled), value


def test_a_closed_ledger_says_the_day_it_closed_in_beijing_and_crosses_rpc_whole():
    from datetime import datetime, timezone

    from nameko.exceptions import deserialize, serialize

    closed = errors.LedgerClosed.at(datetime(2026, 12, 3, 17, 30, tzinfo=timezone.utc))  # 01:30 on the 4th in Beijing
    assert closed.message == "This ledger was closed on 2026-12-04; its members' data was destroyed."
    assert closed.to_dict() == {"code": "ledger_closed", "message": closed.message,
                                "details": {"closed_at": "2026-12-03T17:30:00+00:00"}}
    again = deserialize(serialize(closed))
    assert type(again) is errors.LedgerClosed and again.to_dict() == closed.to_dict()
    assert isinstance(again, errors.Conflict) and status_for(again) == 410
    assert errors.LedgerClosed.at(None).message == errors.LedgerClosed.default_message
