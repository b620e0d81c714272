"""Benchmark ``floor``: the join flow's bare skeleton (``bench.floor_services``) under the
join benchmark's load, against the same reference.

It answers one question about issue 3's target: what does the message flow that
DESIGN.md prescribes for a join cost on this stack (Nameko 2, eventlet, RabbitMQ,
Python 3.11) on this machine, before the services do any work? Each virtual user loops
``GET /api/join/{token}`` → ``POST /api/join/{token}`` (RPC, then wait for the
``challenge_sent`` broadcast) → ``GET /api/dev/sms`` → ``POST /api/challenges/{id}/confirm``
(RPC, then wait for ``joined``), as in ``bench.join``; the services behind it make the
same RPCs, publish the same events to the same kinds of queues and call a Health Kit
stand-in twice, and do nothing else. The reference is the same ``GET /api/ping`` (one
HTTP request, one RPC to a method that does nothing), measured on this skeleton's stack.

If the skeleton alone cannot reach 80 joins/s, or costs more CPU per join than 80/s
allows on this machine, no implementation of that flow can, whatever its queries.
"""

from __future__ import annotations

import os
import sys
import threading
import uuid

from bench.join import STEPS, TARGET_JOINS_PER_S, TARGET_P99_MS, cpu_per_join, ping_scenario
from bench.load import Client, Iteration, StepFailed, error_key, looped, run_phase, summary
from bench.stack import BenchStack, free_port
from shared.healthkit.simulator import create_server
from shared.stack import ROOT, Stack
from tests.bus import create_vhost

NAME = "floor"
STACK_ENV: dict[str, str] = {}
SERVICES = ("FloorMember", "FloorVerify", "FloorHealthsync", "FloorGateway")


def sim_app(environ, start_response):
    """The floor's Health Kit: answers every call at once, with a small JSON body."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    environ["wsgi.input"].read(length)
    body = b'{"match": true, "records": []}'
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def serve_sim() -> None:
    server = create_server(sim_app, "127.0.0.1", int(sys.argv[2]))
    server.serve_forever()


class FloorStack(BenchStack):
    """The skeleton's processes (``shared.stack.Stack`` runs them, logs in ``log_dir``) on a
    private RabbitMQ vhost, and no database; stopped and cleaned up as a BenchStack is."""

    def start(self, ready_timeout: float = 60.0) -> "FloorStack":  # type: ignore[override]
        self.vhost, amqp_uri = create_vhost(trace=False)
        sim_port, gateway_port = free_port(), free_port()
        self.env = {
            **os.environ,
            **self.extra_env,
            "PYTHONUNBUFFERED": "1",
            "AMQP_URI": amqp_uri,
            "GATEWAY_ADDRESS": f"127.0.0.1:{gateway_port}",
            "FLOOR_SIM_URL": f"http://127.0.0.1:{sim_port}",
        }
        self.stack = Stack(self.env, log_dir=self.log_dir)
        self.stack.spawn("healthkit-sim", [sys.executable, "-m", "bench.floor", "serve-sim", str(sim_port)])
        for service in SERVICES:
            # as shared.stack starts the real gateway: its workers mostly wait, and the
            # broadcasts that wake them need free workers of the same pool
            env = {**self.env, "MAX_WORKERS": "200"} if service == "FloorGateway" else None
            self.stack.spawn(
                service.removeprefix("Floor").lower(),
                [sys.executable, "-m", "nameko", "run", "--config", str(ROOT / "config.yaml"),
                 f"bench.floor_services:{service}"],
                env,
            )
        self.stack.wait_ready(timeout=ready_timeout)
        return self


STACK = FloorStack  # bench.__main__ runs this benchmark on it instead of a BenchStack


def floor_scenario():
    def one(client: Client, it: Iteration) -> None:
        begun = it.start("join_info")
        r = client.get("/api/join/floor")
        if r.status_code != 200:
            raise StepFailed(error_key(r))
        it.done()

        it.start("join_request")
        r = client.post("/api/join/floor", {"person": uuid.uuid4().hex})
        body = r.json()
        if r.status_code != 201:
            raise StepFailed(error_key(r, body.get("status", "")))
        it.done()

        it.start("sms_code")
        r = client.get("/api/dev/sms", {"challenge_id": body["challenge_id"]})
        items = r.json()["items"]
        if r.status_code != 200 or not items:
            raise StepFailed(error_key(r, "no code"))
        it.done()

        it.start("confirm")
        r = client.post(
            f"/api/challenges/{body['challenge_id']}/confirm",
            {"membership_id": body["membership_id"], "code": items[0]["text"][-6:]},
        )
        if r.status_code != 200 or r.json().get("membership_status") != "active":
            raise StepFailed(error_key(r, r.json().get("membership_status", "")))
        ended = it.done()
        it.rec.step("join_total", begun, ended)
        it.rec.complete(ended)

    return looped(one)


def run(stack: FloorStack, args, stop: threading.Event, meter_factory) -> dict:
    users, duration, warmup = args.users, args.duration, args.warmup
    meter = meter_factory()
    print(f"floor: reference phase, {users} users on GET /api/ping for {warmup:g}+{duration:g}s...", flush=True)
    meter.start()
    ref = run_phase(users, duration, warmup, ping_scenario(), stack.gateway_url, stop, label="ping")
    ref_cpu = meter.stop()
    print(f"floor: join phase, {users} users on the skeleton join for {warmup:g}+{duration:g}s...", flush=True)
    meter.start()
    rec = run_phase(users, duration, warmup, floor_scenario(), stack.gateway_url, stop, label="floor")
    join_cpu = meter.stop()
    ref_rps = ref.completed / duration
    joins_per_s = rec.completed / duration
    return {
        "params": {"users": users, "duration_s": duration, "warmup_s": warmup},
        "joins_per_second": round(joins_per_s, 2),
        "errors": {k: dict(v) for k, v in rec.errors.items()},
        "steps": {step: summary(rec.latencies[step]) for step in (*STEPS, "join_total")},
        "reference": {"per_second": round(ref_rps, 1), **summary(ref.latencies["ping"])},
        "ratio_joins_per_reference_request": round(joins_per_s / ref_rps, 4) if ref_rps else None,
        "cpu": {"reference_phase": ref_cpu, "join_phase": join_cpu},
        "cpu_ms_per_join": cpu_per_join(join_cpu, joins_per_s, ref_cpu, ref_rps),
        "targets": {"joins_per_second": TARGET_JOINS_PER_S, "p99_ms_per_step": TARGET_P99_MS},
    }


def print_report(result: dict) -> None:
    p = result["params"]
    print()
    print(f"== floor: the join flow with no work in it, {p['users']} users, {p['duration_s']:g}s ==")
    for step, s in result["steps"].items():
        print(f"{step:14} {s['count']:7d}  p50 {s['p50_ms'] or 0:7.1f}  p99 {s['p99_ms'] or 0:7.1f} ms")
    print(f"skeleton joins/s          {result['joins_per_second']:8.2f}  (target for real joins ≥ {TARGET_JOINS_PER_S:g})")
    print(f"reference GET /api/ping   {result['reference']['per_second']:8.1f} req/s")
    print(f"joins/s ÷ ping req/s      {result['ratio_joins_per_reference_request']}")
    if result["errors"]:
        print(f"errors: {result['errors']}")
    per_join = result["cpu_ms_per_join"]
    if per_join:
        parts = ", ".join(f"{name} {ms:.1f}" for name, ms in per_join["by_process"].items())
        print(
            f"CPU per skeleton join: {per_join['total_ms']:.1f} ms ({parts}); 80/s needs ≤ "
            f"{per_join['budget_ms_for_target']:.1f} ms; a skeleton join costs "
            f"{per_join['join_in_reference_requests']} reference requests"
        )
        left = per_join["budget_ms_for_target"] - per_join["total_ms"]
        print(
            f"at 80 joins/s a real join has {left:.1f} ms of CPU left for everything the skeleton leaves out "
            "(PostgreSQL and every query, the outbox relays, handled-event records, crypto, validation)"
            if left > 0 else "the skeleton alone costs more than 80 joins/s allows: no implementation of this flow "
            "reaches the target on this machine"
        )


if __name__ == "__main__" and sys.argv[1:2] == ["serve-sim"]:
    serve_sim()
