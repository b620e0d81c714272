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
