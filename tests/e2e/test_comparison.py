"""后台比 end to end: comparison with the Health Kit through the real services and bus —
first check on join, runs fanned out per ledger with progress, dedupe of people in
several ledgers, Health Kit failure → stale (never wrong), re-checks, change feed,
runs started by RPC, by a bus message and by the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from shared.stack import ROOT
from tests.e2e.flows import create_active_ledger, join, join_token, known_person, sql, wait_until


@pytest.fixture
def ledger(api):
    admin = known_person(api, "吴老师")
    ledger_id, admin_token = create_active_ledger(api, admin)
    return {"id": ledger_id, "admin": admin, "admin_token": admin_token, "token": join_token(api, ledger_id, admin_token)}


@pytest.fixture
def rpc(running):
    with ClusterRpcProxy({"AMQP_URI": running.env["AMQP_URI"]}, timeout=30) as proxy:
        yield proxy


def members(api, ledger) -> dict:
    items = api.get(f"/api/ledgers/{ledger['id']}/members", token=ledger["admin_token"]).json()["items"]
    return {m["name"]: m for m in items}


def set_switches(running, **switches):
    requests.put(running.healthkit_url + "/switches", json=switches, timeout=5).raise_for_status()


def wait_run(api, token: str, run_id: str, timeout: float = 30) -> dict:
    return wait_until(
        lambda: (r := api.get(f"/api/sync/runs/{run_id}", token=token).json())["status"] == "finished" and r,
        timeout=timeout, what="the run to finish",
    )


def test_a_new_member_is_checked_at_once(api, ledger):
    joiner = known_person(api, "郑一", code_status="yellow", vaccination="primary")
    join(api, ledger["token"], joiner)
    row = wait_until(lambda: (m := members(api, ledger).get("郑一")) and m.get("synced_at") and m, what="first check")
    assert row["code_status"] == "yellow"
    assert row["vaccination"] == "primary"
    assert row["test_result"] == "negative" and row["test_days"] in (0, 1)
    assert row["stale"] is False


def test_an_admin_sync_compares_the_ledger_and_reports_progress(api, running, ledger):
    people = [known_person(api, name) for name in ("甲", "乙", "丙")]
    for p in people:
        join(api, ledger["token"], p)
    # healthsync learns of each join from member.joined (and checks the person at once)
    wait_until(lambda: len(ms := members(api, ledger)) == 3 and all(m.get("synced_at") for m in ms.values()),
               what="healthsync to know the three members")
    api.put_resident(people[0].id_number, code_status="red", popup="弹窗二")
    started = api.post(f"/api/ledgers/{ledger['id']}/sync", token=ledger["admin_token"])
    assert started.status_code == 202, started.text
    run = wait_run(api, ledger["admin_token"], started.json()["run_id"])
    assert (run["ledgers_total"], run["ledgers_done"], run["ledgers_failed"]) == (1, 1, 0)
    assert run["people_compared"] == 3 and run["trigger"] == "admin"
    assert run["started_at"] and run["finished_at"]
    assert members(api, ledger)["甲"]["code_status"] == "red"
    assert members(api, ledger)["甲"]["popup"] == "弹窗二"
    last = api.get(f"/api/ledgers/{ledger['id']}/sync", token=ledger["admin_token"]).json()
    assert last["last_status"] == "done" and last["last_success_at"]
    # rate-limited per ledger
    again = api.post(f"/api/ledgers/{ledger['id']}/sync", token=ledger["admin_token"])
    assert again.status_code == 429 and again.json()["error"]["details"]["retry_after"] > 0
    # only this ledger's admins see it
    outsider = known_person(api)
    _, outsider_token = create_active_ledger(api, outsider)
    assert api.get(f"/api/sync/runs/{run['run_id']}", token=outsider_token).status_code == 403
    assert api.post(f"/api/ledgers/{ledger['id']}/sync", token=outsider_token).status_code == 403


def test_a_run_fans_out_per_ledger_and_fetches_each_person_once(api, running, rpc):
    shared_person = known_person(api, "共享")
    ledgers = []
    for org in ("甲单位", "乙单位", "丙单位"):
        admin = known_person(api)
        ledger_id, token = create_active_ledger(api, admin, org_name=org)
        join(api, join_token(api, ledger_id, token), shared_person)
        join(api, join_token(api, ledger_id, token), known_person(api))
        ledgers.append(ledger_id)
    # healthsync has heard of every membership (member.joined) before the run starts
    wait_until(lambda: sql(running, "SELECT count(*) FROM healthsync.members WHERE ledger_id = ANY(%s)", ledgers)[0][0] == 6,
               what="the projection")
    run = rpc.healthsync.run_now(None)
    finished = wait_until(
        lambda: (s := rpc.healthsync.run_status(run["run_id"]))["status"] == "finished" and s, what="run"
    )
    assert finished["ledgers_failed"] == 0
    assert finished["ledgers_done"] == finished["ledgers_total"] >= 3
    distinct = sql(running, "SELECT count(DISTINCT person_ref) FROM healthsync.members")[0][0]
    assert finished["people_compared"] == distinct
    # every person given to exactly one ledger's work, and every ledger's work gone through
    # (a snapshot's last_run_id is no proof: a check between runs, e.g. another test's
    # join or the change feed, may rewrite it after the run)
    per_person = sql(
        running,
        "SELECT a.person_ref, count(*) FROM healthsync.run_ledgers rl, unnest(rl.assigned) AS a(person_ref)"
        " WHERE rl.run_id = %s GROUP BY 1",
        run["run_id"],
    )
    assert len(per_person) == distinct and {n for _, n in per_person} == {1}
    assert sql(running, "SELECT count(*) FROM healthsync.run_ledgers WHERE run_id = %s"
               " AND gone_through <> cardinality(assigned)", run["run_id"])[0][0] == 0
    shared_ledgers = sql(
        running,
        "SELECT count(*) FROM healthsync.members m JOIN (SELECT unnest(assigned) AS person_ref FROM healthsync.run_ledgers"
        " WHERE run_id = %s) a USING (person_ref) WHERE m.ledger_id = ANY(%s) GROUP BY m.person_ref ORDER BY 1 DESC LIMIT 1",
        run["run_id"], ledgers,
    )[0][0]
    assert shared_ledgers == 3  # the shared person is in three ledgers, compared once


def test_a_failing_health_kit_leaves_last_good_values_flagged_stale(api, running, ledger):
    joiner = known_person(api, "王稳")
    join(api, ledger["token"], joiner)
    wait_until(lambda: members(api, ledger)["王稳"].get("synced_at"), what="first check")
    set_switches(running, failure_rate=1.0)  # the Health Kit cannot be reached...
    api.put_resident(joiner.id_number, code_status="red")  # ...and changes meanwhile
    try:
        started = api.post(f"/api/ledgers/{ledger['id']}/sync", token=ledger["admin_token"]).json()
        run = wait_run(api, ledger["admin_token"], started["run_id"], timeout=60)
        # read while the Health Kit is still down: once it is back, the change feed
        # rightly brings the new value within a second
        row = members(api, ledger)["王稳"]
    finally:
        set_switches(running, failure_rate=0.0)
    assert run["ledgers_failed"] == 1 and run["ledgers_done"] == 0
    assert row["code_status"] == "green"  # the last good value, never a guess
    assert row["stale"] is True and row["stale_since"]
    last = api.get(f"/api/ledgers/{ledger['id']}/sync", token=ledger["admin_token"]).json()
    assert last["last_status"] == "failed"


def test_recheck_by_member_and_refresh_by_admin(api, running, ledger):
    joiner = known_person(api, "冯查")
    membership_id, member_token = join(api, ledger["token"], joiner)
    wait_until(lambda: members(api, ledger)["冯查"].get("synced_at"), what="first check")
    set_switches(running, latency_ms=0)
    api.put_resident(joiner.id_number, vaccination="booster", code_status="yellow")
    mine = api.post(f"/api/me/memberships/{membership_id}/recheck", token=member_token)
    assert mine.status_code == 200, mine.text
    assert mine.json()["code_status"] == "yellow"
    assert api.post(f"/api/me/memberships/{membership_id}/recheck", token=member_token).status_code == 429
    # someone else's membership
    assert api.post(f"/api/me/memberships/{membership_id}/recheck", token=ledger["admin_token"]).status_code == 404
    refreshed = api.post(f"/api/ledgers/{ledger['id']}/members/{membership_id}/refresh", token=ledger["admin_token"])
    assert refreshed.status_code == 429  # the same person was just checked
    other = known_person(api, "冯二")
    other_id, _ = join(api, ledger["token"], other)
    wait_until(lambda: members(api, ledger)["冯二"].get("synced_at"), what="the new member's first check")
    api.put_resident(other.id_number, code_status="red")
    refreshed = api.post(f"/api/ledgers/{ledger['id']}/members/{other_id}/refresh", token=ledger["admin_token"])
    assert refreshed.status_code == 200 and refreshed.json()["code_status"] == "red"
    assert api.post(f"/api/ledgers/{ledger['id']}/members/{other_id}/refresh", token=member_token).status_code == 403


def test_the_change_feed_brings_a_change_without_a_run(api, ledger):
    joiner = known_person(api, "褚变")
    join(api, ledger["token"], joiner)
    wait_until(lambda: members(api, ledger)["褚变"].get("synced_at"), what="first check")
    api.put_resident(joiner.id_number, code_status="yellow", last_test_result="pending")
    row = wait_until(
        lambda: (m := members(api, ledger)["褚变"])["code_status"] == "yellow" and m, timeout=60, what="feed"
    )
    assert row["test_result"] == "pending"


def test_a_status_change_is_published_without_personal_data(api, running, ledger):
    joiner = known_person(api, "蒋变")
    membership_id, member_token = join(api, ledger["token"], joiner)
    wait_until(lambda: members(api, ledger)["蒋变"].get("synced_at"), what="first check")
    running.capture.drain()
    api.put_resident(joiner.id_number, code_status="red")
    api.post(f"/api/me/memberships/{membership_id}/recheck", token=member_token)
    def changed():
        for body in running.capture.drain():
            if b"status_changed" in body:
                message = json.loads(body)
                if message["data"]["after"]["code_status"] == "red" and ledger["id"] in message["data"]["ledger_ids"]:
                    assert joiner.id_number.encode() not in body and joiner.phone.encode() not in body
                    return message
        return None
    message = wait_until(changed, what="status_changed on the bus")
    assert message["data"]["before"]["code_status"] == "green"
    assert "code_status" in message["data"]["changed"]


def test_runs_start_from_a_bus_message_and_from_the_cli(api, running, ledger):
    join(api, ledger["token"], known_person(api))
    wait_until(lambda: sql(running, "SELECT count(*) FROM healthsync.members WHERE ledger_id = %s", ledger["id"])[0][0] == 1,
               what="the projection")
    from services.healthsync.triggers import request_run_by_message

    before = sql(running, "SELECT count(*) FROM healthsync.runs WHERE trigger = 'bus'")[0][0]
    request_run_by_message(running.env["AMQP_URI"], ledger["id"])
    wait_until(
        lambda: sql(running, "SELECT count(*) FROM healthsync.runs WHERE trigger = 'bus' AND status = 'finished'")[0][0]
        > before,
        what="bus-triggered run",
    )
    cli = subprocess.run(
        [sys.executable, "-m", "services.healthsync.cli", "run", "--ledger", ledger["id"]],
        cwd=ROOT, env=running.env, capture_output=True, text=True, timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert "1/1 ledgers" in cli.stdout and "finished: 1 done, 0 failed" in cli.stdout


def test_leaving_stops_comparison_and_forgets_the_person(api, running, ledger):
    joiner = known_person(api, "韩走")
    membership_id, member_token = join(api, ledger["token"], joiner)
    wait_until(lambda: members(api, ledger)["韩走"].get("synced_at"), what="first check")
    ref = sql(running, "SELECT person_ref FROM healthsync.members WHERE membership_id = %s", membership_id)[0][0]
    api.post(f"/api/me/memberships/{membership_id}/leave", token=member_token)
    wait_until(
        lambda: sql(running, "SELECT count(*) FROM healthsync.subjects WHERE person_ref = %s", ref)[0][0] == 0,
        what="subject to be forgotten",
    )
    assert sql(running, "SELECT count(*) FROM healthsync.snapshots WHERE person_ref = %s", ref)[0][0] == 0
    assert sql(running, "SELECT count(*) FROM healthsync.members WHERE membership_id = %s", membership_id)[0][0] == 0
