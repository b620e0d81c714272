"""Every service settles its heap when it starts: what startup made is frozen, so the
collector's full passes no longer walk it (each was a 60-100 ms pause mid-request)."""

import gc

import pytest
from nameko.containers import ServiceContainer

from services.gateway.service import GatewayService
from services.healthsync.service import HealthsyncService
from services.member.service import MemberService
from services.org.service import OrgService
from services.verify.service import VerifyService
from shared.heap import SettledHeap


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


class Settling:
    name = "settling"
    heap = SettledHeap()


def test_starting_a_container_freezes_what_startup_made(unfrozen):
    startup_object = ["made at startup", []]  # a container: the collector tracks it
    assert gc.get_freeze_count() == 0
    assert any(o is startup_object for o in gc.get_objects())
    container = ServiceContainer(Settling, {})
    container.start()
    try:
        assert gc.get_freeze_count() > 0
        # frozen objects are out of every collection's sight: the collector no longer tracks them
        assert not any(o is startup_object for o in gc.get_objects())
    finally:
        container.stop()


@pytest.mark.parametrize("service", [OrgService, VerifyService, MemberService, HealthsyncService, GatewayService])
def test_every_service_settles_its_heap(service):
    assert any(isinstance(v, SettledHeap) for v in vars(service).values())
