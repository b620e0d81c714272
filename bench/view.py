"""Benchmark ``view`` (issue 5): an admin reading a 5,000-member ledger through the API.

Setup (not timed): an admin creates a ledger through the API (the join benchmark's
way: Health Kit record, application, SMS code, confirm), so the ledger, its owner and
the owner's session are real. ``--view-members`` members (default 5,000) are then put
straight into the stores, as the services would have written them (then VACUUM ANALYZE,
the state autovacuum leaves a ledger in):

- ``member.memberships``: active, name / ID number / phone encrypted under the ledger's
  member-data key (``member.ledger_keys``, unwrapped as ``memberships._cipher`` does),
  consent version and times as ``request_join`` + ``activate`` set them;
- ``healthsync.members`` / ``healthsync.subjects`` (ID sealed under the master key,
  AAD person_ref, as ``Comparison.member_joined``) / ``healthsync.snapshots`` (rows
  made by ``Comparison._row`` from each person's Health Kit record);
- ``healthkit_sim.residents``: the same people (the simulator's synthetic health mix).

Measured, each with ``--view-requests`` requests (default 200) from ``--view-clients``
concurrent clients (default 4) after a few unmeasured ones from as many clients (each
service's connection pools then hold the connections that load needs, as in steady
use):

- ``GET /api/ledgers/{id}/members``: the first page (50 rows), unfiltered;
- ``GET /api/ledgers/{id}/members?abnormal=true``: the first page, abnormal only;
- ``GET /api/ledgers/{id}/stats``;

and ``GET /api/ledgers/{id}/export.xlsx`` ``--view-exports`` times (default 5), one at
a time (each checked: one sheet row per member).
"""

from __future__ import annotations

import io
import random
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import psycopg2
import requests

from bench import seeding
from bench.load import summary
from bench.procstats import ConnectionSampler
from tests.e2e.api_client import ApiClient
from tests.e2e.flows import create_active_ledger, known_person

NAME = "view"
STACK_ENV = {"SYNC_TIMES": ""}  # no scheduled run in the middle of the measurements
TARGET_P99_MS = 100.0
TARGET_XLSX_S = 3.0
RNG_SEED = 5_000_005
WARMUP_REQUESTS = 5  # per client, from as many clients as are measured (so every pool is warm)
SINGLE_CLIENT_REQUESTS = 20  # one client, one request at a time: the latency without queueing
TIMEOUT = 60
ENDPOINT_LABELS = {
    "page": "GET members (page 1, 50 rows)",
    "abnormal": "GET members?abnormal=true (page 1)",
    "stats": "GET stats",
    "export_xlsx": "GET export.xlsx (whole ledger)",
}


# -- setup ---------------------------------------------------------------------------------

def _wait_for(stack, query: str, params, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    conn = psycopg2.connect(stack.database_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            while True:
                cur.execute(query, params)
                if cur.fetchone()[0]:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"view: timed out waiting for {what}")
                time.sleep(0.2)
    finally:
        conn.close()


def seed_members(stack, ledger_id: str, count: int) -> dict:
    from services.healthsync.comparison import Comparison
    from shared.consent import CONSENT_VERSION
    from shared.healthkit import HealthRecord

    c = seeding.stack_crypto(stack.env)
    rng = random.Random(RNG_SEED)
    now = datetime.now(timezone.utc)
    started = time.monotonic()
    conn = psycopg2.connect(stack.database_url)
    try:
        with conn.cursor() as cur:
            people = seeding.new_people(cur, count, RNG_SEED, now=now)
            cur.execute("SELECT wrapped_key FROM member.ledger_keys WHERE ledger_id = %s", (ledger_id,))
            wrapped = bytes(cur.fetchone()[0])
            cipher = c.data_cipher(c.unwrap_data_key(f"member-ledger:{ledger_id}", wrapped))
            memberships, hs_members, subjects, snapshots = [], [], [], []
            for p in people:
                ref = c.person_ref("resident_id", p.id_number)
                membership_id = str(uuid.uuid4())
                joined = now - timedelta(seconds=rng.random() * 60 * 86400)
                requested = joined - timedelta(seconds=30 + rng.random() * 60)
                memberships.append((
                    membership_id, ledger_id, ref, "active", str(uuid.uuid4()), "resident_id",
                    cipher.encrypt_text(p.name), cipher.encrypt_text(p.id_number), cipher.encrypt_text(p.phone),
                    CONSENT_VERSION, requested, requested, joined,
                ))
                hs_members.append((membership_id, ledger_id, ref, joined))
                subjects.append((ref, "resident_id", c.master.encrypt_text(p.id_number, aad=ref.encode())))
                record = HealthRecord(
                    id_number=p.id_number, code_status=p.code_status, popup=p.popup,
                    last_test_sampled_at=p.last_test_sampled_at, last_test_result=p.last_test_result,
                    vaccination=p.vaccination, updated_at=p.updated_at,
                )
                row = {
                    **Comparison._row(ref, record),
                    "pending_seen_at": now if record.last_test_result == "pending" else None,
                    "checked_at": now, "stale_since": None, "last_run_id": None,
                }
                snapshots.append(tuple(row[k] for k in SNAPSHOT_COLUMNS))
            seeding.copy_rows(cur, "healthkit_sim.residents", seeding.RESIDENT_COLUMNS, people)
            seeding.copy_rows(cur, "member.memberships", MEMBERSHIP_COLUMNS, memberships)
            seeding.copy_rows(cur, "healthsync.members", ("membership_id", "ledger_id", "person_ref", "joined_at"), hs_members)
            seeding.copy_rows(cur, "healthsync.subjects", ("person_ref", "id_type", "id_number_enc"), subjects)
            seeding.copy_rows(cur, "healthsync.snapshots", SNAPSHOT_COLUMNS, snapshots)
        conn.commit()
        conn.autocommit = True
        with conn.cursor() as cur:
            for table in ("member.memberships", "healthsync.members", "healthsync.subjects", "healthsync.snapshots"):
                cur.execute(f"VACUUM ANALYZE {table}")  # as autovacuum leaves a settled ledger
            cur.execute("SELECT count(*) FROM healthsync.members")
            all_members = cur.fetchone()[0]
    finally:
        conn.close()
    return {"members": len(people), "seconds": round(time.monotonic() - started, 1),
            "healthsync_members_in_database": all_members}


MEMBERSHIP_COLUMNS = (
    "id", "ledger_id", "person_ref", "status", "challenge_id", "id_type", "name_enc", "id_number_enc",
    "phone_enc", "consent_version", "consented_at", "requested_at", "joined_at",
)
SNAPSHOT_COLUMNS = (
    "person_ref", "code_status", "popup", "last_test_sampled_at", "last_test_result", "pending_seen_at",
    "vaccination", "checked_at", "stale_since", "last_run_id",
)


# -- measuring ---------------------------------------------------------------------------------

class Failed(Exception):
    pass


def measure(requests_total: int, clients: int, call, stop: threading.Event) -> dict:
    """``call(session)`` ``requests_total`` times from ``clients`` threads."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    left = [requests_total]

    def client() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                t0 = time.monotonic()
                try:
                    call(session)
                    elapsed = (time.monotonic() - t0) * 1000
                    with lock:
                        latencies.append(elapsed)
                except (Failed, requests.RequestException, ValueError, KeyError) as exc:
                    key = str(exc) if isinstance(exc, Failed) else type(exc).__name__
                    with lock:
                        errors[key] = errors.get(key, 0) + 1

    started = time.monotonic()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    return {**summary(latencies), "errors": errors, "wall_s": round(wall, 2),
            "per_second": round(len(latencies) / wall, 1) if wall else None}


def _check(response: requests.Response) -> dict:
    if response.status_code != 200:
        raise Failed(f"HTTP {response.status_code}")
    return response.json()


def run(stack, args, stop: threading.Event, meter_factory) -> dict:
    quick = bool(args.quick)
    n_requests = args.view_requests or (50 if quick else 200)
    n_exports = args.view_exports or (2 if quick else 5)
    clients = args.view_clients
    api = ApiClient(stack.gateway_url, stack.healthkit_url)

    print("view: creating a ledger through the API...", flush=True)
    admin = known_person(api, "管理员")
    ledger_id, token = create_active_ledger(api, admin)
    _wait_for(stack, "SELECT count(*) FROM member.ledger_keys WHERE ledger_id = %s", (ledger_id,),
              what="the member service to learn the ledger")
    _wait_for(stack, "SELECT count(*) FROM healthsync.ledger_admins WHERE ledger_id = %s", (ledger_id,),
              what="healthsync to learn the ledger's owner")
    print(f"view: putting {args.view_members:,} members into ledger {ledger_id} (not timed)...", flush=True)
    seeded = seed_members(stack, ledger_id, args.view_members)
    print(f"view: seeded in {seeded['seconds']}s", flush=True)

    base = f"{stack.gateway_url}/api/ledgers/{ledger_id}"
    headers = {"Authorization": f"Bearer {token}"}
    expected = seeded["members"]
    seen: dict[str, object] = {}

    def page(session):
        body = _check(session.get(base + "/members", headers=headers, timeout=TIMEOUT))
        if body["total"] != expected or len(body["items"]) != min(50, expected) or "name" not in body["items"][0]:
            raise Failed(f"unexpected page: total {body['total']}, {len(body['items'])} items")
        if "code_status" not in body["items"][0]:
            raise Failed("page without health fields")

    def abnormal(session):
        body = _check(session.get(base + "/members", params={"abnormal": "true"}, headers=headers, timeout=TIMEOUT))
        if body["items"] and not all(i["abnormal"] for i in body["items"]):
            raise Failed("a normal member in the abnormal page")
        seen["abnormal_total"] = body["total"]

    def stats(session):
        body = _check(session.get(base + "/stats", headers=headers, timeout=TIMEOUT))
        if body["members_total"] != expected:
            raise Failed(f"stats count {body['members_total']}")
        seen["stats"] = {k: body[k] for k in ("members_total", "abnormal", "stale", "code_status")}

    def export(session):
        response = session.get(base + "/export.xlsx", headers=headers, timeout=TIMEOUT)
        if response.status_code != 200:
            raise Failed(f"HTTP {response.status_code}")
        seen["xlsx_bytes"] = len(response.content)
        seen["xlsx_content"] = response.content

    results: dict[str, dict] = {}
    single: dict[str, dict] = {}
    cpu: dict[str, dict] = {}
    connections = ConnectionSampler(stack.database_url)
    try:
        connections.start()
        for key, call in (("page", page), ("abnormal", abnormal), ("stats", stats)):
            measure(WARMUP_REQUESTS * clients, clients, call, stop)
            single[key] = measure(SINGLE_CLIENT_REQUESTS, 1, call, stop)
            print(f"view: {ENDPOINT_LABELS[key]}: {n_requests} requests, {clients} clients...", flush=True)
            meter = meter_factory()
            meter.start()
            results[key] = measure(n_requests, clients, call, stop)
            cpu[f"{key}_phase"] = meter.stop()
        print(f"view: {ENDPOINT_LABELS['export_xlsx']}: {n_exports} exports, one at a time...", flush=True)
        measure(1, 1, export, stop)
        meter = meter_factory()
        meter.start()
        results["export_xlsx"] = measure(n_exports, 1, export, stop)
        cpu["export_xlsx_phase"] = meter.stop()
        peak_connections = connections.stop()
    finally:
        connections.close()

    xlsx_rows = _xlsx_member_rows(seen.pop("xlsx_content", b""))
    targets = {}
    for key in ("page", "abnormal", "stats"):
        p99 = results[key]["p99_ms"]
        targets[f"{key}_p99_ms"] = {
            "target": TARGET_P99_MS, "measured": p99,
            "result": "PASS" if p99 is not None and p99 <= TARGET_P99_MS and not results[key]["errors"] else "MISS",
        }
    worst = results["export_xlsx"]["max_ms"]
    targets["xlsx_s"] = {
        "target": TARGET_XLSX_S, "measured_worst": round(worst / 1000, 2) if worst is not None else None,
        "measured_median": round(results["export_xlsx"]["p50_ms"] / 1000, 2) if results["export_xlsx"]["p50_ms"] else None,
        "result": "PASS" if worst is not None and worst / 1000 <= TARGET_XLSX_S and xlsx_rows == expected else "MISS",
    }
    return {
        "params": {"members": args.view_members, "requests_per_endpoint": n_requests, "clients": clients,
                   "exports": n_exports, "warmup_requests": WARMUP_REQUESTS, "quick": quick},
        "ledger_id": ledger_id,
        "seed": seeded,
        "endpoints": results,
        "single_client": single,
        "checks": {"abnormal_members": seen.get("abnormal_total"), "stats": seen.get("stats"),
                   "xlsx_bytes": seen.get("xlsx_bytes"), "xlsx_member_rows": xlsx_rows},
        "targets": targets,
        "cpu": cpu,
        "postgres_connections": {"view_phases": peak_connections},
    }


def _xlsx_member_rows(content: bytes) -> int | None:
    if not content:
        return None
    from openpyxl import load_workbook

    from services.gateway.exports import COLUMNS

    sheet = load_workbook(io.BytesIO(content), read_only=True).active
    rows, after_header = 0, False
    for row in sheet.iter_rows(values_only=True):
        if after_header:
            rows += 1
        elif row and row[0] == COLUMNS[0]:
            after_header = True
    return rows


def _fmt(v, width=8) -> str:
    return "-".rjust(width) if v is None else f"{v:{width}.1f}"


def print_report(result: dict) -> None:
    p = result["params"]
    print()
    print(f"== ledger view (issue 5): {p['members']:,} members; {p['requests_per_endpoint']} requests per endpoint "
          f"from {p['clients']} clients; {p['exports']} XLSX exports one at a time ==")
    print(f"{'endpoint':38} {'count':>6} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'req/s':>7}  errors")
    for key, label in ENDPOINT_LABELS.items():
        e = result["endpoints"][key]
        errors = ", ".join(f"{k}×{n}" for k, n in e["errors"].items()) or "0"
        print(f"{label:38} {e['count']:6d} {_fmt(e['p50_ms'])} {_fmt(e['p90_ms'])} {_fmt(e['p99_ms'])} "
              f"{_fmt(e['max_ms'])} {_fmt(e['per_second'], 7)}  {errors}")
    for key, e in result.get("single_client", {}).items():
        print(f"  one client, {e['count']} requests in a row: {ENDPOINT_LABELS[key]:34} p50 {_fmt(e['p50_ms'])} ms, "
              f"max {_fmt(e['max_ms'])} ms")
    c = result["checks"]
    print(f"abnormal members: {c['abnormal_members']}; stats: {c['stats']}")
    print(f"XLSX: {c['xlsx_bytes']} bytes, {c['xlsx_member_rows']} member rows")
    t = result["targets"]
    for key in ("page", "abnormal", "stats"):
        x = t[f"{key}_p99_ms"]
        print(f"target {ENDPOINT_LABELS[key]} p99 ≤ {x['target']:g} ms: {x['measured']} {x['result']}")
    x = t["xlsx_s"]
    print(f"target XLSX of {p['members']:,} members ≤ {x['target']:g} s (every export): worst {x['measured_worst']} s, "
          f"median {x['measured_median']} s {x['result']}")
    conns = result["postgres_connections"]["view_phases"]
    print(f"PostgreSQL connections: peak {conns['peak_this_database']} to this database, "
          f"{conns['peak_whole_server']} on the whole server (max_connections {conns['max_connections']})")
