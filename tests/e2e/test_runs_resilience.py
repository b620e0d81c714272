"""Runs survive what happens to real deployments: several healthsync instances seeing the
same scheduled time (one run), and a worker killed with SIGKILL in the middle of a run
(the run completes; everyone compared exactly once)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import psycopg2
import psycopg2.extras
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from shared.crypto import crypto
from tests.e2e.flows import sql, wait_until
from tests.people import person


def seed_ledgers(running, ledgers: int, people_per_ledger: int) -> list[str]:
    """Memberships straight into healthsync's projection, and their people into the
    Health Kit's store: the join flow for thousands would only slow the test down."""
    ledger_ids = [str(uuid.uuid4()) for _ in range(ledgers)]
    c = crypto()
    residents, subjects, members = [], [], []
    sampled = datetime.now(timezone.utc) - timedelta(hours=30)
    for ledger_id in ledger_ids:
        for _ in range(people_per_ledger):
            p = person("压测")
            ref = c.person_ref("resident_id", p.id_number)
            residents.append((p.id_number, "resident_id", p.name, p.phone, "green", None, sampled, "negative", "booster"))
            subjects.append((ref, "resident_id", c.master.encrypt_text(p.id_number, aad=ref.encode())))
            members.append((str(uuid.uuid4()), ledger_id, ref, datetime.now(timezone.utc)))
    conn = psycopg2.connect(running.env["DATABASE_URL"])
    with conn, conn.cursor() as cur:
        psycopg2.extras.execute_values(
            cur,
            "INSERT INTO healthkit_sim.residents (id_number, id_type, name, phone, code_status, popup,"
            " last_test_sampled_at, last_test_result, vaccination) VALUES %s ON CONFLICT DO NOTHING",
            residents,
        )
        psycopg2.extras.execute_values(cur, "INSERT INTO healthsync.subjects VALUES %s ON CONFLICT DO NOTHING", subjects)
        psycopg2.extras.execute_values(
            cur, "INSERT INTO healthsync.members (membership_id, ledger_id, person_ref, joined_at) VALUES %s", members
        )
    conn.close()
    return ledger_ids


def test_two_instances_start_exactly_one_run_per_scheduled_time(running):
    tz = ZoneInfo("Asia/Shanghai")
    slot = (datetime.now(tz) - timedelta(minutes=1)).replace(second=0, microsecond=0)
    overrides = {"SYNC_TIMES": slot.strftime("%H:%M"), "SCHEDULE_CHECK_SECONDS": "0.3"}
    stack = running.stack
    stack.start_service("healthsync", name="healthsync-a", **overrides)
    stack.start_service("healthsync", name="healthsync-b", **overrides)
    try:
        def scheduled_runs():
            return sql(
                running, "SELECT id FROM healthsync.runs WHERE trigger = 'schedule' AND scheduled_for = %s", slot
            )
        wait_until(scheduled_runs, timeout=30, what="the scheduled run")
        time.sleep(3)  # both instances keep ticking through the slot
        assert len(scheduled_runs()) == 1
        ticks = [running.log_dir.joinpath(f"healthsync-{x}.log").read_text() for x in "ab"]
        assert sum("scheduled run" in t for t in ticks) == 1
    finally:
        stack.stop("healthsync-a")
        stack.stop("healthsync-b")


def test_a_run_survives_its_worker_being_killed(running):
    ledger_ids = seed_ledgers(running, ledgers=6, people_per_ledger=1500)
    requests.put(running.healthkit_url + "/switches", json={"latency_ms": 1200}, timeout=5).raise_for_status()
    stack = running.stack
    try:
        with ClusterRpcProxy({"AMQP_URI": running.env["AMQP_URI"]}, timeout=30) as rpc:
            run = rpc.healthsync.run_now(None)
            wait_until(
                lambda: 0 < rpc.healthsync.run_status(run["run_id"])["people_compared"],
                timeout=60, what="the run to be under way",
            )
            status = rpc.healthsync.run_status(run["run_id"])
            assert status["status"] == "running"
            stack.kill("healthsync")  # kill -9 in the middle of the run
            time.sleep(1)
            stack.start_service("healthsync")
            finished = wait_until(
                lambda: (s := rpc.healthsync.run_status(run["run_id"]))["status"] == "finished" and s,
                timeout=120, what="the run to finish after the restart",
            )
    finally:
        requests.put(running.healthkit_url + "/switches", json={"latency_ms": 0}, timeout=5)
    assert status["people_compared"] < finished["people_compared"]
    assert finished["ledgers_failed"] == 0
    assert finished["ledgers_done"] == finished["ledgers_total"]
    distinct = sql(running, "SELECT count(DISTINCT person_ref) FROM healthsync.members")[0][0]
    assert finished["people_compared"] == distinct
    # each ledger counted the people it compared; compared twice, someone would count twice
    counted = sql(
        running,
        "SELECT sum(people), sum(cardinality(assigned)) FROM healthsync.run_ledgers WHERE run_id = %s",
        run["run_id"],
    )[0]
    assert counted == (distinct, distinct)
    not_in_run = sql(
        running,
        "SELECT count(*) FROM healthsync.members m JOIN healthsync.snapshots s USING (person_ref) "
        "WHERE m.ledger_id = ANY(%s) AND s.last_run_id IS DISTINCT FROM %s",
        ledger_ids, run["run_id"],
    )[0][0]
    assert not_in_run == 0


def test_ledger_work_that_does_not_fit_its_contract_is_parked_for_the_operator(running):
    # a malformed work message would fail on every delivery: it goes to the dead-letter
    # queue at once (not back to the work queue for ever)
    from shared.handling import DEAD_LETTER_QUEUE
    from tests.integration.support import Bus

    bus = Bus("", running.env["AMQP_URI"])
    bad = {"event_id": str(uuid.uuid4()), "event_type": "healthsync.ledger_work", "data": {"run_id": "r"}}
    bus.publish("healthsync.events", "ledger_work", bad)
    parked: list = []

    def parked_ours():
        if bus.queue_counts(DEAD_LETTER_QUEUE) is not None:  # declared by the first dead letter
            parked.extend(m for m in bus.drain(DEAD_LETTER_QUEUE) if m.body == bad)
        return parked

    wait_until(parked_ours, timeout=15, what="the malformed work to be dead-lettered")
    assert parked[0].headers["x-original-queue"] == "evt-healthsync-ledger_work--healthsync.on_ledger_work"
    assert parked[0].headers["x-error"] == "contract: ValidationError"
    assert (bus.queue_counts("evt-healthsync-ledger_work--healthsync.on_ledger_work") or (0, 0))[0] == 0
