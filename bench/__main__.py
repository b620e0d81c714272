"""``python -m bench [--only join,comparison,view] [--quick] [--users 50] [--duration 20]``:
run the chosen benchmarks, each on a private stack of its own (started, then torn down
also on Ctrl-C or failure), print their tables and merge their figures into
bench/results.json.

Benchmarks: ``join`` (issue 3, joins/s through the API), ``comparison`` (issue 4, a full
comparison run over 1,000,000 memberships; ``--quick``: 100,000) and ``view`` (issue 5,
the member list, stats and XLSX export of a 5,000-member ledger)."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import comparison, floor, join, view  # noqa: E402
from bench.logscan import print_findings, scan  # noqa: E402
from bench.procstats import CpuMeter, stack_memory  # noqa: E402
from bench.report import merge_results, print_memory  # noqa: E402
from bench.stack import BenchStack  # noqa: E402

# name → module with NAME, STACK_ENV, run(stack, args, stop, meter_factory) and print_report(result);
# and STACK where it runs on a stack other than BenchStack
BENCHMARKS = {join.NAME: join, floor.NAME: floor, comparison.NAME: comparison, view.NAME: view}
# benchmarks whose figures --quick changes (stored as '<name>@quick')
QUICK_AWARE = (comparison.NAME, view.NAME)
KEEP_LOG_RUNS = 5
# settings worth recording next to the figures
STACK_KNOBS = (
    "MAX_WORKERS", "LOG_LEVEL", "RPC_TIMEOUT", "HEALTHKIT_RETRIES", "SIM_LATENCY_MS",
    "SMS_DAILY_CAP_PER_CLIENT", "SMS_DAILY_CAP_PER_PHONE", "TRUSTED_PROXY_HOPS", "LEDGER_MEMBER_CAP",
    "SIM_FAILURE_RATE", "HEALTHKIT_TIMEOUT", "SYNC_BATCH_RETRIES", "SYNC_TIMES", "GATEWAY_MAX_WORKERS",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--users", type=int, default=50, help="concurrent virtual users (default 50)")
    parser.add_argument("--duration", type=float, default=20, help="measured seconds per phase (default 20)")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured seconds before each phase's window (default 3)")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help=f"comma-separated benchmarks (of: {', '.join(BENCHMARKS)})")
    parser.add_argument("--residents", type=int, default=0, help="joiners to pre-register (default: enough for ~120 joins/s)")
    parser.add_argument("--results", type=Path, default=HERE / "results.json", help="where to merge the figures")
    parser.add_argument("--tag", default="", help="store the figures as '<benchmark>@<tag>' (e.g. a config variant)")
    parser.add_argument("--log-dir", type=Path, default=None, help="service logs (default bench/logs/<time>; the last 5 are kept)")
    parser.add_argument("--quick", action="store_true",
                        help="comparison: 100,000 memberships / 1,000 ledgers / ~70,000 people; view: fewer requests "
                             "(figures stored as '<benchmark>@quick')")
    group = parser.add_argument_group("comparison")
    group.add_argument("--memberships", type=int, default=0, help="memberships to seed (default 1,000,000; --quick 100,000)")
    group.add_argument("--ledgers", type=int, default=0, help="ledgers to spread them over (default 10,000; --quick 1,000)")
    group.add_argument("--people", type=int, default=0, help="distinct people (default 700,000; --quick 70,000)")
    group.add_argument("--instances", type=int, default=2, help="healthsync instances during the run (default 2)")
    group.add_argument("--sync-workers", type=int, default=0,
                       help="MAX_WORKERS of the healthsync instances (default 0: the stack's, 20; the work messages an "
                            "instance holds at once are compared together, and only their groups' leaders hold a "
                            "PostgreSQL connection)")
    group.add_argument("--run-timeout", type=float, default=600, help="give up on the run after this many seconds (default 600)")
    group = parser.add_argument_group("view")
    group.add_argument("--view-members", type=int, default=5000, help="members of the ledger (default 5,000)")
    group.add_argument("--view-requests", type=int, default=0, help="requests per endpoint (default 200; --quick 50)")
    group.add_argument("--view-clients", type=int, default=4, help="concurrent clients (default 4)")
    group.add_argument("--view-exports", type=int, default=0, help="XLSX exports, one at a time (default 5; --quick 2)")
    args = parser.parse_args(argv)
    args.selected = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = [b for b in args.selected if b not in BENCHMARKS]
    if unknown or not args.selected:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    if args.users < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("--users must be ≥ 1, --duration > 0, --warmup ≥ 0")
    if min(args.memberships, args.ledgers, args.people, args.sync_workers, args.view_requests, args.view_exports) < 0:
        parser.error("sizes and counts must be ≥ 0")
    if args.instances < 1 or args.view_clients < 1 or args.view_members < 1 or args.run_timeout <= 0:
        parser.error("--instances, --view-clients and --view-members must be ≥ 1, --run-timeout > 0")
    return args


def result_key(name: str, args: argparse.Namespace) -> str:
    suffixes = (["quick"] if args.quick and name in QUICK_AWARE else []) + ([args.tag] if args.tag else [])
    return f"{name}@{'-'.join(suffixes)}" if suffixes else name


# the code the figures depend on most: a fingerprint of each file goes with the figures
FINGERPRINTED = (
    "services/healthsync/comparison.py", "services/healthsync/ledger_view.py", "services/healthsync/service.py",
    "services/healthsync/models.py", "services/member/memberships.py", "services/gateway/service.py",
    "shared/outbox.py", "shared/healthkit/simulator.py",
)


def code_fingerprints() -> dict[str, str]:
    out = {}
    for rel in FINGERPRINTED:
        try:
            out[rel] = hashlib.sha256((ROOT / rel).read_bytes()).hexdigest()[:12]
        except OSError:
            out[rel] = "missing"
    return out


def _prune_logs(logs_root: Path) -> None:
    runs = sorted(p for p in logs_root.glob("run-*") if p.is_dir())
    for old in runs[:-KEEP_LOG_RUNS]:
        shutil.rmtree(old, ignore_errors=True)


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def run_one(name: str, args: argparse.Namespace) -> int:
    """One benchmark on a private stack of its own (fresh database and vhost, its own
    settings): it measures its scenario, not what the benchmark before it left behind
    (a million rows being vacuumed, a second healthsync instance, queued events)."""
    module = BENCHMARKS[name]
    log_dir = args.log_dir / name if len(args.selected) > 1 else args.log_dir
    began = time.monotonic()
    load_before = os.getloadavg()
    stop = threading.Event()
    bench_stack = getattr(module, "STACK", BenchStack)(log_dir, extra_env=dict(module.STACK_ENV))
    rc = 0
    try:
        print(f"bench {name}: starting a private stack (logs in {log_dir})...", flush=True)
        bench_stack.start()
        database = f"database {bench_stack.database_name}, " if bench_stack.database_name else "no database, "
        print(
            f"bench {name}: stack ready in {time.monotonic() - began:.1f}s at {bench_stack.gateway_url} "
            f"({database}vhost {bench_stack.vhost})",
            flush=True,
        )
        result = {
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "host": {"cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load_before]},
            "stack_env": {k: bench_stack.env.get(k, "(default)") for k in STACK_KNOBS},
            "code_sha256_12": code_fingerprints(),
        }
        result.update(module.run(bench_stack, args, stop, lambda: CpuMeter(bench_stack.processes)))
        result["memory"] = stack_memory(bench_stack.processes)
        findings = scan(log_dir)
        result["logs"] = {"dir": str(log_dir), "warnings_and_errors": findings}
        module.print_report(result)
        print_memory(result["memory"], result["cpu"])
        print_findings(findings, log_dir)
        key = result_key(name, args)
        merge_results(args.results, key, result)
        print(f"\nbench: figures merged into {args.results} under {key!r}", flush=True)
    except KeyboardInterrupt:
        print("\nbench: interrupted; tearing the stack down...", file=sys.stderr, flush=True)
        rc = 130
    except Exception:  # noqa: BLE001 - report, then clean up
        traceback.print_exc()
        print(f"bench: failed; the service logs are in {log_dir}", file=sys.stderr, flush=True)
        rc = 1
    finally:
        stop.set()
        problems = bench_stack.close()
        for problem in problems:
            print(f"bench: cleanup problem: {problem}", file=sys.stderr)
        print(f"bench {name}: stack torn down after {time.monotonic() - began:.0f}s", flush=True)
    return rc


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    if args.log_dir is None:
        logs_root = HERE / "logs"
        logs_root.mkdir(exist_ok=True)
        _prune_logs(logs_root)
        args.log_dir = logs_root / f"run-{stamp}"
    began = time.monotonic()
    rc = 0
    for name in args.selected:
        rc = run_one(name, args)
        if rc:
            break
    print(f"bench: total {time.monotonic() - began:.0f}s", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
