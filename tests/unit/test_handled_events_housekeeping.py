"""Every service that handles events (``@handles``) forgets old handled event ids."""

import inspect

import pytest
from nameko.events import EventHandler
from nameko.timer import Timer

from services.gateway.service import GatewayService
from services.healthsync.service import HealthsyncService
from services.member.service import MemberService
from services.org.service import OrgService
from services.verify.service import VerifyService
from shared.handling import ForgetsHandledEvents


def _handles_events(cls) -> bool:
    """Whether any method is an ``@handles`` handler (an event handler wrapping the method)."""
    return any(
        hasattr(fn, "__wrapped__") and any(isinstance(e, EventHandler) for e in getattr(fn, "nameko_entrypoints", ()))
        for _, fn in inspect.getmembers(cls, inspect.isfunction)
    )


@pytest.mark.parametrize("service", [OrgService, VerifyService, MemberService, HealthsyncService, GatewayService])
def test_a_service_that_handles_events_forgets_them_on_a_timer(service):
    if not _handles_events(service):
        assert service is GatewayService  # it only listens (broadcast), keeping nothing
        return
    assert issubclass(service, ForgetsHandledEvents)
    timers = [e for e in service.forget_handled_events.nameko_entrypoints if isinstance(e, Timer)]
    assert len(timers) == 1
