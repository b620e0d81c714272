"""The healthsync service: compares members with the Health Kit. Entrypoints only
translate and delegate to :class:`services.healthsync.comparison.Comparison`.

Runs start four ways: the schedule (a timer on every instance; one wins), RPC
``run_now``, a message on the ``healthsync.run-requests`` queue, and the admin
endpoint (``request_ledger_sync``). Work is fanned out as one ``ledger_work`` message
per ledger, consumed by every instance competing."""

from __future__ import annotations

import logging
from datetime import datetime

import eventlet
from kombu import Exchange, Queue
from nameko.events import event_handler
from nameko.extensions import DependencyProvider
from nameko.messaging import consume
from nameko.timer import timer

from services.healthsync import alerts, ledger_view
from services.healthsync.comparison import Comparison
from services.healthsync.ledger_work import LedgerWorkGroups
from services.healthsync.models import Base, LedgerRules  # noqa: F401 - Base registers the outbox tables
from shared import handling
from shared.config import settings
from shared.crypto import crypto
from shared.db import Database, service_health
from shared.errors import TuantibuError
from shared.events import contract
from shared.handling import handles
from shared.healthkit import HealthKitUnavailable, health_kit
from shared.heap import SettledHeap
from shared.ledger_filters import parse_filters
from shared.outbox import OutboxRelay
from shared.rpc import Rpc, rpc

log = logging.getLogger(__name__)
expected = (TuantibuError,)

RUN_REQUESTS = Queue(
    "healthsync.run-requests", exchange=Exchange(""), routing_key="healthsync.run-requests", durable=True
)


class HealthKitProvider(DependencyProvider):
    def setup(self) -> None:
        self.kit = health_kit(settings())

    def get_dependency(self, worker_ctx):
        return self.kit


class LedgerWorkProvider(DependencyProvider):
    """One :class:`LedgerWorkGroups` per process: the work messages it holds together."""

    def setup(self) -> None:
        self.groups = LedgerWorkGroups()

    def get_dependency(self, worker_ctx):
        return self.groups


class HealthsyncService(handling.ForgetsHandledEvents):
    name = "healthsync"

    db = Database(spare=2)  # its timers (schedule, change feed, digests) hold connections too
    relay = OutboxRelay()
    health_kit = HealthKitProvider()
    ledger_work = LedgerWorkProvider()
    verify = Rpc("verify")
    heap = SettledHeap()

    @property
    def comparison(self) -> Comparison:
        return Comparison(self.db, crypto(), self.health_kit, settings())

    # -- starting runs ----------------------------------------------------------------

    @timer(interval=settings().schedule_check_seconds)
    def scheduled_run(self) -> None:
        run = self.comparison.start_scheduled_run()
        if run:
            log.info("scheduled run %s started: %d ledgers", run["run_id"], run["ledgers_total"])

    @rpc(expected_exceptions=expected)
    def run_now(self, ledger_id: str | None = None, trigger: str = "rpc") -> dict:
        return self.comparison.start_run(trigger if trigger in ("rpc", "cli") else "rpc", ledger_id=ledger_id)

    @consume(RUN_REQUESTS)
    def run_requested(self, body) -> None:
        ledger_id = body.get("ledger_id") if isinstance(body, dict) else None
        run = self.comparison.start_run("bus", ledger_id=ledger_id)
        log.info("run %s started from the bus: %d ledgers", run["run_id"], run["ledgers_total"])

    @rpc(expected_exceptions=expected)
    def request_ledger_sync(self, ledger_id: str, person_ref: str) -> dict:
        return self.comparison.request_ledger_sync(ledger_id, person_ref)

    # -- doing the work ---------------------------------------------------------------

    @event_handler("healthsync", "ledger_work", requeue_on_error=True)
    def on_ledger_work(self, payload: dict) -> None:
        # compared with the other work this process holds (ledger_work); idempotent by
        # the run_ledgers row and committed batch by batch, so a redelivered message
        # continues where a killed worker stopped. A failure (the database gone, a
        # deadlock) sends the message back after a pause, never drops it.
        data = handling.load_or_park(contract("healthsync.ledger_work"), payload, self.name, "on_ledger_work")
        if data is None:
            return
        try:
            self.ledger_work.sync(data["run_id"], data["ledger_id"], self.comparison.sync_ledgers)
        except Exception as exc:
            # described as handled events are (a driver error's text can quote a value)
            log.error("ledger %s of run %s failed (%s); its work goes back to the queue",
                      data["ledger_id"], data["run_id"], handling.describe(exc))
            eventlet.sleep(settings().handler_backoff_seconds)
            raise

    @timer(interval=settings().feed_interval_seconds)
    def follow_feed(self) -> None:
        try:
            compared = self.comparison.follow_feed()
        except HealthKitUnavailable:
            self.db.rollback()
            log.warning("the Health Kit change feed is unavailable; will retry")
            return
        if compared:
            log.info("change feed: re-checked %d people", compared)

    # -- reading progress ---------------------------------------------------------------

    @rpc(expected_exceptions=expected)
    def run_status(self, run_id: str, person_ref: str | None = None) -> dict:
        return self.comparison.run_status(run_id, person_ref)

    @rpc(expected_exceptions=expected)
    def ledger_sync_status(self, ledger_id: str, person_ref: str) -> dict:
        return self.comparison.ledger_sync_status(ledger_id, person_ref)

    # -- one person -------------------------------------------------------------------

    @rpc(expected_exceptions=expected)
    def refresh_member(self, ledger_id: str, membership_id: str, person_ref: str) -> dict:
        return self.comparison.refresh_member(ledger_id, membership_id, person_ref)

    @rpc(expected_exceptions=expected)
    def recheck_mine(self, membership_id: str, person_ref: str) -> dict:
        return self.comparison.recheck_mine(membership_id, person_ref)

    @rpc(expected_exceptions=expected)
    def health_of_memberships(self, ledger_id: str, person_ref: str, membership_ids: list) -> dict:
        return self.comparison.health_of_memberships(ledger_id, person_ref, membership_ids)

    @rpc(expected_exceptions=expected)
    def my_health(self, membership_id: str, person_ref: str) -> dict:
        return self.comparison.my_health(membership_id, person_ref)

    # -- the ledger view (health side), alerts, reminders ----------------------------

    @rpc(expected_exceptions=expected)
    def query_members(self, ledger_id: str, person_ref: str, args: dict, everything: bool = False) -> dict:
        ledger_id, rules = self.comparison.admin_rules(ledger_id, person_ref)
        return ledger_view.query(self.db, ledger_id, parse_filters(args), everything, rules)

    @rpc(expected_exceptions=expected)
    def ledger_stats(self, ledger_id: str, person_ref: str) -> dict:
        ledger_id, rules = self.comparison.admin_rules(ledger_id, person_ref)
        return ledger_view.stats(self.db, ledger_id, rules)

    @rpc(expected_exceptions=expected)
    def abnormal_members(self, ledger_id: str, person_ref: str, member_ids: list | None = None) -> dict:
        """Who fails which rule now: for reminders."""
        ledger_id, rules = self.comparison.admin_rules(ledger_id, person_ref)
        found = ledger_view.query(self.db, ledger_id, parse_filters({"abnormal": "true"}), True, rules)
        items = found["items"]
        if member_ids is not None:
            wanted = set(member_ids)
            items = [i for i in items if i["member_id"] in wanted]
        return {
            "members": {i["member_id"]: [r["code"] for r in i["abnormal_reasons"]] for i in items},
            "rules": rules,
        }

    @rpc(expected_exceptions=expected)
    def list_alerts(self, ledger_id: str, person_ref: str) -> dict:
        ledger_id = self.comparison.require_admin(ledger_id, person_ref)
        return alerts.list_alerts(self.db, ledger_id, person_ref)

    @rpc(expected_exceptions=expected)
    def mark_alerts_read(self, ledger_id: str, person_ref: str, alert_ids: list | None = None) -> dict:
        ledger_id = self.comparison.require_admin(ledger_id, person_ref)
        return alerts.mark_read(self.db, ledger_id, person_ref, alert_ids)

    @rpc(expected_exceptions=expected)
    def set_digest(self, ledger_id: str, person_ref: str, enabled) -> dict:
        ledger_id = self.comparison.require_admin(ledger_id, person_ref)
        return alerts.set_digest(self.db, ledger_id, person_ref, enabled)

    @timer(interval=settings().digest_check_seconds)
    def send_digests(self) -> None:
        for due in alerts.due_digests(self.db):
            rules = self.db.get(LedgerRules, due["ledger_id"])
            self.verify.send_notice(
                due["person_ref"], "alert_digest",
                {"org_name": rules.org_name if rules else "", "count": str(due["count"])},
            )

    @timer(interval=settings().housekeeping_seconds)
    def finish_complete_runs(self) -> None:
        self.comparison.finish_complete_runs()

    @timer(interval=settings().housekeeping_seconds)
    def forget_old_runs(self) -> None:
        forgotten = self.comparison.forget_old_runs(settings().run_history_days)
        if forgotten:
            log.info("forgot %d runs older than %d days", forgotten, settings().run_history_days)

    # -- projection -----------------------------------------------------------------------

    @handles("member.joined")
    def on_member_joined(self, data: dict, envelope: dict) -> None:
        comparison = self.comparison
        joined = comparison.member_joined(data)
        try:
            # a new member does not wait for the next run
            comparison.check_new_member(*joined)
        except HealthKitUnavailable:
            log.warning("first check of a new member deferred: the Health Kit is unavailable")

    @handles("member.left")
    def on_member_left(self, data: dict, envelope: dict) -> None:
        self.comparison.member_left(data)

    @handles("org.ledger_activated")
    def on_ledger_activated(self, data: dict, envelope: dict) -> None:
        self.comparison.ledger_activated(data)

    @handles("org.rules_changed")
    def on_rules_changed(self, data: dict, envelope: dict) -> None:
        self.comparison.rules_changed(data)

    @handles("org.admin_added")
    def on_admin_added(self, data: dict, envelope: dict) -> None:
        self.comparison.admin_added(data)

    @handles("org.admin_removed")
    def on_admin_removed(self, data: dict, envelope: dict) -> None:
        self.comparison.admin_removed(data)

    @handles("org.ledger_closed")
    def on_ledger_closed(self, data: dict, envelope: dict) -> None:
        self.comparison.ledger_closed(data["ledger_id"], datetime.fromisoformat(envelope["occurred_at"]))

    @rpc
    def health(self) -> dict:
        return service_health(self.name, self.db)
