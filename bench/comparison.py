"""Benchmark ``comparison`` (issue 4): a full comparison run of every ledger against the
Health Kit, through the real services and bus, against one SQL statement doing the same
join on the same PostgreSQL.

Setup (not timed): ``--memberships`` active memberships (default 1,000,000; ``--quick``
100,000) across ``--ledgers`` ledgers (10,000; 1,000) of about ``--people`` distinct
people (700,000; 70,000: some are in several ledgers, never twice in one) are COPied
straight into healthsync's projection (``healthsync.members``, ``healthsync.subjects``
with the ID numbers sealed as ``Comparison.member_joined`` seals them) and the people
into the Health Kit simulator's store (``healthkit_sim.residents``, its own synthetic
health mix). Then ``VACUUM ANALYZE``. A second healthsync instance is started
(``--instances``, default 2).

Reference 1 (timed): one ``INSERT … SELECT … ON CONFLICT DO UPDATE`` writes every
person's ``healthsync.snapshots`` row from the members ⋈ subjects ⋈ residents join
(the encrypted IDs are joined through a temporary person_ref → id_number table built
before timing). This leaves the snapshots as a previous run would: the run below is a
steady-state run (every row updated, nothing changed). Then ``ANALYZE`` of the snapshots
(not timed), as autovacuum would have done since a previous run.

The run (timed): RPC ``healthsync.run_now(None)``; ``run_status`` polled until
``finished``. Meanwhile: the work messages left in healthsync's outbox and on the
queue, what PostgreSQL's sessions are doing (``pg_stat_activity`` sampled), CPU per
process.

Reference 2 (timed): the same statement again, now updating every row as the run did;
``reference_s / run_s`` is the ratio reported.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import psycopg2
import requests
from kombu import Connection

from bench import seeding
from bench.procstats import ConnectionSampler, memory_kb

NAME = "comparison"
# no scheduled run may start in the middle; no latency at the simulator
STACK_ENV = {"SIM_LATENCY_MS": "0", "SIM_FAILURE_RATE": "0", "SYNC_TIMES": ""}
FULL = {"memberships": 1_000_000, "ledgers": 10_000, "people": 700_000}
QUICK = {"memberships": 100_000, "ledgers": 1_000, "people": 70_000}
TARGET_RUN_S_PER_MILLION = 120.0
TARGET_RATIO = 0.2
TARGET_PEAK_RSS_MB = 300.0
RNG_SEED = 4_000_004
WORK_QUEUE = "evt-healthsync-ledger_work--healthsync.on_ledger_work"

REFERENCE_SQL = """
INSERT INTO healthsync.snapshots AS s (person_ref, code_status, popup, last_test_sampled_at, last_test_result,
                                       pending_seen_at, vaccination, record_updated_at, checked_at, stale_since,
                                       last_run_id)
SELECT p.person_ref,
       COALESCE(r.code_status, 'unknown'),
       r.popup,
       r.last_test_sampled_at,
       r.last_test_result,
       CASE WHEN r.last_test_result = 'pending' THEN now() END,
       COALESCE(r.vaccination, 'none_found'),
       r.updated_at, now(), NULL, %(run_id)s
FROM (SELECT DISTINCT m.person_ref
      FROM healthsync.members m JOIN healthsync.subjects sub ON sub.person_ref = m.person_ref) p
JOIN bench_ref_map x ON x.person_ref = p.person_ref
LEFT JOIN healthkit_sim.residents r ON r.id_number = x.id_number
ON CONFLICT (person_ref) DO UPDATE SET
    code_status = EXCLUDED.code_status,
    popup = EXCLUDED.popup,
    last_test_sampled_at = EXCLUDED.last_test_sampled_at,
    last_test_result = EXCLUDED.last_test_result,
    pending_seen_at = CASE WHEN EXCLUDED.last_test_result = 'pending' THEN
        CASE WHEN s.last_test_result = 'pending' AND s.last_test_sampled_at = EXCLUDED.last_test_sampled_at
                  AND s.pending_seen_at IS NOT NULL
             THEN s.pending_seen_at ELSE EXCLUDED.checked_at END END,
    vaccination = EXCLUDED.vaccination,
    record_updated_at = EXCLUDED.record_updated_at,
    checked_at = EXCLUDED.checked_at,
    stale_since = NULL,
    last_run_id = EXCLUDED.last_run_id
"""


def sizes(args) -> dict:
    base = dict(QUICK if args.quick else FULL)
    for key in base:
        value = getattr(args, key, None)
        if value:
            base[key] = value
    if base["people"] > base["memberships"]:
        base["people"] = base["memberships"]
    return base


# -- seeding ------------------------------------------------------------------------------

def _memberships(rng: random.Random, people: int, memberships: int, ledgers: int) -> list[list[int]]:
    """Person indexes per ledger: everyone once, the rest drawn at random; nobody twice
    in one ledger."""
    slots = list(range(people)) + [rng.randrange(people) for _ in range(memberships - people)]
    rng.shuffle(slots)
    per, extra = divmod(memberships, ledgers)
    out, start = [], 0
    for i in range(ledgers):
        n = per + (1 if i < extra else 0)
        chunk = slots[start : start + n]
        start += n
        seen: set[int] = set()
        for j, p in enumerate(chunk):
            while p in seen:  # the first occurrence stays: this person keeps a membership
                p = rng.randrange(people)
            chunk[j] = p
            seen.add(p)
        out.append(chunk)
    return out


def seed(stack, size: dict, log=print) -> dict:
    timings = {}
    rng = random.Random(RNG_SEED)
    now = datetime.now(timezone.utc)
    conn = psycopg2.connect(stack.database_url)
    try:
        with conn.cursor() as cur:
            t = time.monotonic()
            people = seeding.new_people(cur, size["people"], RNG_SEED, now=now)
            timings["generate_people_s"] = round(time.monotonic() - t, 1)
            log(f"comparison: {len(people):,} people made in {timings['generate_people_s']}s; sealing their IDs...")
            t = time.monotonic()
            sealed = seeding.person_refs_and_sealed_ids(stack.env, [p.id_number for p in people])
            timings["person_refs_and_encryption_s"] = round(time.monotonic() - t, 1)
            t = time.monotonic()
            ledger_ids = [str(uuid.uuid4()) for _ in range(size["ledgers"])]
            plan = _memberships(rng, len(people), size["memberships"], size["ledgers"])

            def member_rows():
                for ledger_id, chunk in zip(ledger_ids, plan):
                    for p in chunk:
                        joined = now - timedelta(seconds=rng.random() * 90 * 86400)
                        yield (str(uuid.uuid4()), ledger_id, sealed[p][0], joined)

            log(f"comparison: COPY {len(people):,} residents, subjects and {size['memberships']:,} memberships...")
            seeding.copy_rows(cur, "healthkit_sim.residents", seeding.RESIDENT_COLUMNS, people)
            seeding.copy_rows(
                cur, "healthsync.subjects", ("person_ref", "id_type", "id_number_enc"),
                ((ref, "resident_id", enc) for ref, enc in sealed),
            )
            seeding.copy_rows(cur, "healthsync.members", ("membership_id", "ledger_id", "person_ref", "joined_at"), member_rows())
            conn.commit()
            timings["copy_s"] = round(time.monotonic() - t, 1)
        conn.autocommit = True
        t = time.monotonic()
        with conn.cursor() as cur:
            for table in ("healthkit_sim.residents", "healthsync.subjects", "healthsync.members"):
                cur.execute(f"VACUUM ANALYZE {table}")
            timings["vacuum_analyze_s"] = round(time.monotonic() - t, 1)
            cur.execute(
                "SELECT count(*), count(DISTINCT ledger_id), count(DISTINCT person_ref) FROM healthsync.members"
            )
            members, ledgers, distinct_people = cur.fetchone()
            cur.execute("SELECT count(*) FROM healthsync.subjects")
            subjects = cur.fetchone()[0]
            cur.execute("SELECT count(*) FROM healthkit_sim.residents")
            residents = cur.fetchone()[0]
    finally:
        conn.close()
    return {
        "seconds": timings,
        "in_database": {
            "memberships": members, "ledgers": ledgers, "distinct_people": distinct_people,
            "subjects": subjects, "residents": residents,
        },
        "seeded": {"memberships": size["memberships"], "ledgers": size["ledgers"], "people": len(people)},
    }


# -- the reference statement -----------------------------------------------------------------

class Reference:
    """One connection holding the temporary person_ref → id_number table."""

    def __init__(self, stack) -> None:
        self.stack = stack
        self.conn = psycopg2.connect(stack.database_url)

    def build_map(self) -> dict:
        t = time.monotonic()
        with self.conn.cursor() as cur:
            cur.execute("SELECT person_ref, id_number_enc FROM healthsync.subjects")
            rows = [(ref, bytes(enc)) for ref, enc in cur]
        mapping = seeding.open_sealed_ids(self.stack.env, rows)
        with self.conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE bench_ref_map (person_ref varchar(64) PRIMARY KEY, id_number text NOT NULL)")
            seeding.copy_rows(cur, "bench_ref_map", ("person_ref", "id_number"), mapping)
            cur.execute("ANALYZE bench_ref_map")
        self.conn.commit()
        return {"rows": len(mapping), "seconds": round(time.monotonic() - t, 1)}

    def run(self) -> dict:
        run_id = str(uuid.uuid4())
        with self.conn.cursor() as cur:
            t = time.monotonic()
            cur.execute(REFERENCE_SQL, {"run_id": run_id})
            rows = cur.rowcount
            self.conn.commit()
            elapsed = time.monotonic() - t
        return {"seconds": round(elapsed, 2), "rows": rows, "last_run_id": run_id}

    def analyze_snapshots(self) -> None:
        """Statistics for the snapshots reference 1 wrote, as autovacuum keeps them for a
        previous run's (not timed): without them the planner takes the table for a few
        pages and a run's writes hash the whole of it for every batch."""
        with self.conn.cursor() as cur:
            cur.execute("ANALYZE healthsync.snapshots")
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()


# -- watching the run ------------------------------------------------------------------------

class RunWatcher:
    """In a thread, on one connection: healthsync's outbox (work messages not yet
    published) every 0.2 s and what this database's sessions do every 0.1 s."""

    def __init__(self, database_url: str, database: str) -> None:
        self.conn = psycopg2.connect(database_url)
        self.conn.autocommit = True
        self.database = database
        self.stop_event = threading.Event()
        self.samples = 0
        self.active_sum = 0
        self.in_tx_sum = 0
        self.activity: Counter = Counter()
        self.outbox_first_seen: float | None = None
        self.outbox_empty_at: float | None = None
        self.outbox_max = 0
        self.thread = threading.Thread(target=self._run, daemon=True, name="run-watcher")

    def start(self) -> None:
        self.started = time.monotonic()
        self.thread.start()

    def _run(self) -> None:
        last_outbox = 0.0
        with self.conn.cursor() as cur:
            while not self.stop_event.wait(0.1):
                try:
                    now = time.monotonic()
                    if self.outbox_empty_at is None and now - last_outbox >= 0.2:
                        last_outbox = now
                        cur.execute(
                            "SELECT count(*) FROM healthsync.outbox WHERE event_type = 'healthsync.ledger_work'"
                        )
                        left = cur.fetchone()[0]
                        self.outbox_max = max(self.outbox_max, left)
                        if left and self.outbox_first_seen is None:
                            self.outbox_first_seen = now
                        if not left and self.outbox_first_seen is not None:
                            self.outbox_empty_at = now
                    cur.execute(
                        """
                        SELECT state, coalesce(wait_event_type, '-'), coalesce(wait_event, '-'),
                               left(regexp_replace(query, '\\s+', ' ', 'g'), 90)
                        FROM pg_stat_activity
                        WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'
                          AND state <> 'idle'
                        """,
                        (self.database,),
                    )
                    rows = cur.fetchall()
                    self.samples += 1
                    for state, wtype, wevent, query in rows:
                        if state == "active":
                            self.active_sum += 1
                        elif state.startswith("idle in transaction"):
                            self.in_tx_sum += 1
                        self.activity[(state, f"{wtype}:{wevent}", query.strip())] += 1
                except Exception:  # noqa: BLE001 - a missed sample is no matter
                    continue

    def stop(self) -> dict:
        self.stop_event.set()
        self.thread.join(timeout=5)
        self.conn.close()
        n = max(1, self.samples)
        top = [
            {"state": s, "wait": w, "query": q, "avg_sessions": round(c / n, 2)}
            for (s, w, q), c in self.activity.most_common(15)
        ]
        return {
            "samples": self.samples,
            "avg_active_sessions": round(self.active_sum / n, 2),
            "avg_idle_in_transaction_sessions": round(self.in_tx_sum / n, 2),
            "top": top,
        }


def queue_state(amqp_uri: str) -> tuple[int, int] | None:
    """(ready messages, consumers) of the work queue, or None."""
    try:
        with Connection(amqp_uri, connect_timeout=3) as conn:
            _, messages, consumers = conn.default_channel.queue_declare(queue=WORK_QUEUE, passive=True)
            return messages, consumers
    except Exception:  # noqa: BLE001
        return None


def wait_consumers(amqp_uri: str, wanted: int, timeout: float = 60.0) -> int | None:
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = queue_state(amqp_uri)
        if state and state[1] >= wanted:
            return state[1]
        time.sleep(0.5)
    return state[1] if state else None


def _switches(stack) -> dict:
    try:
        return requests.get(stack.healthkit_url + "/switches", timeout=5).json()
    except Exception as exc:  # noqa: BLE001
        return {"error": repr(exc)}


def _db(stack, query: str, params=()) -> list:
    conn = psycopg2.connect(stack.database_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall()
    finally:
        conn.close()


def run_comparison(stack, amqp_uri: str, timeout_s: float, stop: threading.Event, log=print) -> dict:
    from nameko.standalone.rpc import ClusterRpcProxy

    watcher = RunWatcher(stack.database_url, stack.database_name)
    timeline = []
    status = None
    timed_out = False
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=120) as rpc:
        watcher.start()
        t0 = time.monotonic()
        try:
            started = rpc.healthsync.run_now(None)
            t_rpc = time.monotonic()
            run_id = started["run_id"]
            log(f"comparison: run {run_id} started ({started['ledgers_total']} ledgers) in {t_rpc - t0:.2f}s; polling...")
            last_print = t_rpc
            first_done_at = None
            while True:
                status = rpc.healthsync.run_status(run_id)
                now = time.monotonic()
                if first_done_at is None and status["ledgers_done"] + status["ledgers_failed"] > 0:
                    first_done_at = now
                q = queue_state(amqp_uri)
                timeline.append([round(now - t0, 1), status["ledgers_done"], status["ledgers_failed"],
                                 status["people_compared"], q[0] if q else None])
                if status["status"] == "finished":
                    break
                if now - t0 > timeout_s or stop.is_set():
                    timed_out = True
                    break
                if now - last_print >= 10:
                    last_print = now
                    log(f"  {now - t0:6.1f}s: {status['ledgers_done']}/{status['ledgers_total']} ledgers, "
                        f"{status['people_compared']:,} people, {q[0] if q else '?'} work messages queued")
                time.sleep(0.5)
            t_end = time.monotonic()
        finally:
            activity = watcher.stop()
    publish_s = (watcher.outbox_empty_at - t0) if watcher.outbox_empty_at else None
    return {
        "run_id": run_id,
        "timed_out": timed_out,
        "wall_s": round(t_end - t0, 2),
        "status": status,
        "phases": {
            "run_now_rpc_s": round(t_rpc - t0, 2),
            "work_messages_published_s": round(publish_s, 2) if publish_s is not None else None,
            "work_messages_in_outbox_max": watcher.outbox_max,
            "first_ledger_done_s (poll)": round(first_done_at - t0, 2) if first_done_at else None,
        },
        "timeline": timeline,
        "db_activity": activity,
    }


def run_db_figures(stack, run_id: str) -> dict:
    (started, finished, first, last, done_ledgers, people), = _db(
        stack,
        """
        SELECT r.started_at, r.finished_at, min(rl.finished_at), max(rl.finished_at),
               count(*) FILTER (WHERE rl.status = 'done'), r.people_compared
        FROM healthsync.runs r JOIN healthsync.run_ledgers rl ON rl.run_id = r.id
        WHERE r.id = %s GROUP BY r.id
        """,
        (run_id,),
    )
    (memberships_done,), = _db(
        stack,
        "SELECT count(*) FROM healthsync.members m JOIN healthsync.run_ledgers rl "
        "ON rl.ledger_id = m.ledger_id AND rl.run_id = %s AND rl.status = 'done'",
        (run_id,),
    )
    (assigned,), = _db(stack, "SELECT sum(cardinality(assigned)) FROM healthsync.run_ledgers WHERE run_id = %s", (run_id,))
    (snap_in_run,), = _db(stack, "SELECT count(*) FROM healthsync.snapshots WHERE last_run_id = %s", (run_id,))
    # when were the statistics the run's statements are planned with refreshed?
    stats = _db(
        stack,
        "SELECT relname, n_live_tup, last_autoanalyze, autoanalyze_count, last_autovacuum "
        "FROM pg_stat_user_tables WHERE schemaname = 'healthsync' AND relname IN ('run_ledgers', 'runs', 'snapshots')",
    )
    # ledgers finished per 10 s of the run (by the services' clock)
    per_10s = _db(
        stack,
        "SELECT floor(extract(epoch FROM rl.finished_at - r.started_at) / 10)::int AS b, count(*) "
        "FROM healthsync.run_ledgers rl JOIN healthsync.runs r ON r.id = rl.run_id "
        "WHERE rl.run_id = %s AND rl.finished_at IS NOT NULL GROUP BY b ORDER BY b",
        (run_id,),
    )

    def since(t):
        return round((t - started).total_seconds(), 2) if t and started else None


    return {
        "run_started_at": started.isoformat() if started else None,
        "run_seconds (db clock)": since(finished),
        "first_ledger_finished_s (db clock)": since(first),
        "last_ledger_finished_s (db clock)": since(last),
        "ledgers_done": done_ledgers,
        "people_compared": people,
        "memberships_in_done_ledgers": memberships_done,
        "people_assigned": int(assigned or 0),
        "snapshots_written_by_run": snap_in_run,
        "ledgers_finished_per_10s": [n for _, n in per_10s],
        "table_stats_after": {
            name: {"live_rows": live, "autoanalyzed_s_after_run_start": since(analyzed), "autoanalyze_count": count,
                   "autovacuumed_s_after_run_start": since(vacuumed)}
            for name, live, analyzed, count, vacuumed in stats
        },
    }


# -- the benchmark ----------------------------------------------------------------------------

def _thin(timeline: list, every: int = 10) -> list:
    kept = timeline[::every]
    if timeline and kept[-1] is not timeline[-1]:
        kept.append(timeline[-1])
    return kept


def _peak_rss(stack) -> dict:
    out = {}
    for name, proc in stack.processes.items():
        if name.startswith("healthsync"):
            kb = memory_kb(proc.pid)
            out[name] = round(kb["VmHWM"] / 1024, 1) if "VmHWM" in kb else None
    return out


def run(stack, args, stop: threading.Event, meter_factory) -> dict:
    size = sizes(args)
    amqp_uri = stack.env["AMQP_URI"]
    instances = max(1, args.instances)

    if args.sync_workers:
        # the first instance was started with the stack's MAX_WORKERS: restart it
        stack.stack.stop("healthsync")
        stack.stack.start_service("healthsync", MAX_WORKERS=str(args.sync_workers))
    extra = {"MAX_WORKERS": str(args.sync_workers)} if args.sync_workers else {}
    for i in range(2, instances + 1):
        stack.stack.start_service("healthsync", name=f"healthsync-{i}", **extra)

    print(
        f"comparison: seeding {size['memberships']:,} memberships in {size['ledgers']:,} ledgers "
        f"of ~{size['people']:,} people (not timed)...",
        flush=True,
    )
    t = time.monotonic()
    seeded = seed(stack, size, log=lambda m: print(m, flush=True))
    seeded["seconds"]["total_s"] = round(time.monotonic() - t, 1)
    print(f"comparison: seeded in {seeded['seconds']['total_s']}s: {seeded['in_database']}", flush=True)

    consumers = wait_consumers(amqp_uri, instances)
    print(f"comparison: {consumers} healthsync consumers on the work queue", flush=True)

    reference = Reference(stack)
    meter = meter_factory()
    connections = ConnectionSampler(stack.database_url)
    try:
        ref_map = reference.build_map()
        print(f"comparison: reference map of {ref_map['rows']:,} people built in {ref_map['seconds']}s", flush=True)
        print("comparison: reference 1 (snapshots written as a previous run would)...", flush=True)
        meter.start()
        ref1 = reference.run()
        ref1_cpu = meter.stop()
        print(f"comparison: reference 1: {ref1['rows']:,} rows in {ref1['seconds']}s", flush=True)
        reference.analyze_snapshots()

        switches_before = _switches(stack)
        print(f"comparison: the run, {instances} healthsync instance(s)...", flush=True)
        meter.start()
        connections.start()
        ran = run_comparison(stack, amqp_uri, args.run_timeout, stop, log=lambda m: print(m, flush=True))
        run_cpu = meter.stop()
        run_connections = connections.stop()
        switches_after = _switches(stack)
        peak_rss = _peak_rss(stack)
        db = run_db_figures(stack, ran["run_id"])  # before reference 2 rewrites the snapshots

        if ran["timed_out"]:
            print(f"comparison: the run did not finish within {args.run_timeout:g}s; the reference is skipped", flush=True)
            ref2, ref2_cpu = None, None
        else:
            print("comparison: reference 2 (the same statement, updating every row)...", flush=True)
            meter.start()
            ref2 = reference.run()
            ref2_cpu = meter.stop()
            print(f"comparison: reference 2: {ref2['rows']:,} rows in {ref2['seconds']}s", flush=True)
    finally:
        reference.close()
        connections.close()

    wall = ran["wall_s"]
    status = ran["status"] or {}
    memberships_done = db["memberships_in_done_ledgers"]
    people = status.get("people_compared") or 0
    target_run_s = TARGET_RUN_S_PER_MILLION * size["memberships"] / 1_000_000
    ratio = round(ref2["seconds"] / wall, 3) if ref2 and wall else None
    full_size = size["memberships"] >= FULL["memberships"]
    cpu = {"reference1_phase": ref1_cpu, "run_phase": run_cpu}
    finished_ledgers = max(1, db["ledgers_done"] or 0)
    cpu_per_ledger = {
        name: round(v["cpu_s"] / finished_ledgers * 1000, 2)
        for name, v in run_cpu["processes"].items()
        if v.get("cpu_s") is not None and (name.startswith("healthsync") or name in ("postgresql", "healthkit-sim", "rabbitmq"))
    }
    if ref2_cpu:
        cpu["reference2_phase"] = ref2_cpu
    return {
        "params": {
            **size, "quick": bool(args.quick), "healthsync_instances": instances,
            "healthsync_max_workers": args.sync_workers or stack.env.get("MAX_WORKERS", "20 (stack default)"),
            "run_timeout_s": args.run_timeout,
        },
        "seed": seeded,
        "healthkit_simulator": {
            "latency_ms": switches_before.get("latency_ms"),
            "failure_rate": switches_before.get("failure_rate"),
            "bulk_and_other_data_calls_during_run": (
                switches_after.get("data_calls", 0) - switches_before.get("data_calls", 0)
                if "data_calls" in switches_after and "data_calls" in switches_before else None
            ),
        },
        "run": {
            **{k: v for k, v in ran.items() if k not in ("timeline", "db_activity")},
            "db": db,
            "memberships_per_s": round(memberships_done / wall, 1) if wall else None,
            "people_per_s": round(people / wall, 1) if wall else None,
            "timeline [s, ledgers_done, ledgers_failed, people_compared, work_msgs_queued]": _thin(ran["timeline"]),
        },
        "reference": {
            "statement": "INSERT … SELECT DISTINCT members ⋈ subjects ⋈ map ⟕ residents … ON CONFLICT DO UPDATE",
            "map": ref_map,
            "first_insert": ref1,
            "second_update": ref2,
        },
        "ratio_reference_s_per_run_s": ratio,
        "targets": {
            "run_s": {
                "target": round(target_run_s, 1),
                "scaled_from_1M": not full_size,
                "measured": wall,
                "result": "PASS" if not ran["timed_out"] and wall <= target_run_s else "MISS",
            },
            "ratio": {"target": TARGET_RATIO, "measured": ratio,
                      "result": "PASS" if ratio is not None and ratio >= TARGET_RATIO else "MISS"},
            "peak_rss_mb_per_healthsync": {
                "target": TARGET_PEAK_RSS_MB, "measured": peak_rss,
                "result": "PASS" if peak_rss and all(v is not None and v <= TARGET_PEAK_RSS_MB for v in peak_rss.values()) else "MISS",
            },
        },
        "db_activity_during_run": ran["db_activity"],
        "cpu_ms_per_ledger_during_run": cpu_per_ledger,
        "cpu": cpu,
        "postgres_connections": {"run_phase": run_connections},
    }


def print_report(result: dict) -> None:
    p, r, ref, t = result["params"], result["run"], result["reference"], result["targets"]
    db = r["db"]
    status = r["status"] or {}
    print()
    print(
        f"== comparison run (issue 4): {p['memberships']:,} memberships, {p['ledgers']:,} ledgers, "
        f"~{p['people']:,} people; {p['healthsync_instances']} healthsync instances "
        f"(MAX_WORKERS {p['healthsync_max_workers']}); simulator latency {result['healthkit_simulator']['latency_ms']} ms =="
    )
    s = result["seed"]
    print(f"seeded (not timed) in {s['seconds'].get('total_s')}s {s['seconds']}: {s['in_database']}")
    print(f"run {r['run_id']}: {status.get('status')}{' (TIMED OUT)' if r['timed_out'] else ''}; "
          f"ledgers {status.get('ledgers_done')}/{status.get('ledgers_total')} done, {status.get('ledgers_failed')} failed")
    print(f"wall time (RPC run_now → run_status finished) {r['wall_s']:10.2f} s   (db clock: {db['run_seconds (db clock)']} s)")
    print(f"memberships compared / s                     {r['memberships_per_s']:10.1f}   ({db['memberships_in_done_ledgers']:,} in done ledgers)")
    print(f"people compared / s                          {r['people_per_s']:10.1f}   ({status.get('people_compared', 0):,} people)")
    ph = r["phases"]
    print(f"phases: run_now RPC {ph['run_now_rpc_s']} s; work messages all published {ph['work_messages_published_s']} s "
          f"(max {ph['work_messages_in_outbox_max']} waiting in the outbox); first ledger done {db['first_ledger_finished_s (db clock)']} s; "
          f"last ledger done {db['last_ledger_finished_s (db clock)']} s (db clock)")
    print(f"ledgers finished per 10 s: {db['ledgers_finished_per_10s']}")
    print(f"Health Kit data calls during the run: {result['healthkit_simulator']['bulk_and_other_data_calls_during_run']}")
    print(f"reference map: {ref['map']['rows']:,} people in {ref['map']['seconds']} s (not timed)")
    r1, r2 = ref["first_insert"], ref["second_update"]
    print(f"reference statement, 1st (inserts)  {r1['seconds']:8.2f} s  {r1['rows']:,} rows")
    if r2:
        print(f"reference statement, 2nd (updates)  {r2['seconds']:8.2f} s  {r2['rows']:,} rows")
    print(f"ratio reference_s / run_s           {result['ratio_reference_s_per_run_s']}")
    rs = t["run_s"]
    print(f"target run ≤ {rs['target']:g} s{' (scaled from 120 s per 1,000,000)' if rs['scaled_from_1M'] else ''}: "
          f"{rs['measured']} s {rs['result']}")
    print(f"target ratio ≥ {t['ratio']['target']}: {t['ratio']['measured']} {t['ratio']['result']}")
    pr = t["peak_rss_mb_per_healthsync"]
    print(f"target peak RSS ≤ {pr['target']:g} MB per healthsync: {pr['measured']} {pr['result']}")
    a = result["db_activity_during_run"]
    print(f"PostgreSQL sessions of this database during the run: {a['avg_active_sessions']} active, "
          f"{a['avg_idle_in_transaction_sessions']} idle in transaction on average ({a['samples']} samples); top:")
    for item in a["top"][:10]:
        print(f"  {item['avg_sessions']:5.2f}  {item['state'][:20]:20} {item['wait'][:28]:28} {item['query'][:80]}")
    print(f"CPU ms per finished ledger during the run: {result['cpu_ms_per_ledger_during_run']} "
          "(postgresql counts every database on the server)")
    print(f"tables after the run: {db['table_stats_after']}")
    c = result["postgres_connections"]["run_phase"]
    print(f"PostgreSQL connections during the run: peak {c['peak_this_database']} to this database, "
          f"{c['peak_whole_server']} on the whole server (max_connections {c['max_connections']})")
