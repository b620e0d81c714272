"""``python -m bench [--users 50] [--duration 20] [--only join]``: start a private stack,
run the chosen benchmarks, print their tables, merge their figures into
bench/results.json and tear the stack down (also on Ctrl-C or failure)."""

from __future__ import annotations

import argparse
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

from bench import join  # noqa: E402
from bench.logscan import print_findings, scan  # noqa: E402
from bench.procstats import CpuMeter, stack_memory  # noqa: E402
from bench.report import merge_results, print_memory  # noqa: E402
from bench.stack import BenchStack  # noqa: E402

# name → module with NAME, STACK_ENV, run(stack, args, stop, meter_factory) and print_report(result)
BENCHMARKS = {join.NAME: join}
KEEP_LOG_RUNS = 5
# settings worth recording next to the figures
STACK_KNOBS = (
    "MAX_WORKERS", "LOG_LEVEL", "RPC_TIMEOUT", "HEALTHKIT_RETRIES", "SIM_LATENCY_MS",
    "SMS_DAILY_CAP_PER_CLIENT", "SMS_DAILY_CAP_PER_PHONE", "LEDGER_MEMBER_CAP",
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
    args = parser.parse_args(argv)
    args.selected = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = [b for b in args.selected if b not in BENCHMARKS]
    if unknown or not args.selected:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    if args.users < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("--users must be ≥ 1, --duration > 0, --warmup ≥ 0")
    return args


def _prune_logs(logs_root: Path) -> None:
    runs = sorted(p for p in logs_root.glob("run-*") if p.is_dir())
    for old in runs[:-KEEP_LOG_RUNS]:
        shutil.rmtree(old, ignore_errors=True)


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


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
    extra_env = {}
    for name in args.selected:
        extra_env.update(BENCHMARKS[name].STACK_ENV)

    began = time.monotonic()
    load_before = os.getloadavg()
    stop = threading.Event()
    bench_stack = BenchStack(args.log_dir, extra_env=extra_env)
    rc = 0
    try:
        print(f"bench: starting a private stack (logs in {args.log_dir})...", flush=True)
        bench_stack.start()
        print(
            f"bench: stack ready in {time.monotonic() - began:.1f}s at {bench_stack.gateway_url} "
            f"(database {bench_stack.database_name}, vhost {bench_stack.vhost})",
            flush=True,
        )
        for name in args.selected:
            module = BENCHMARKS[name]
            result = {
                "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "host": {"cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load_before]},
                "stack_env": {k: bench_stack.env.get(k, "(default)") for k in STACK_KNOBS},
            }
            result.update(module.run(bench_stack, args, stop, lambda: CpuMeter(bench_stack.processes)))
            result["memory"] = stack_memory(bench_stack.processes)
            findings = scan(args.log_dir)
            result["logs"] = {"dir": str(args.log_dir), "warnings_and_errors": findings}
            module.print_report(result)
            print_memory(result["memory"], result["cpu"])
            print_findings(findings, args.log_dir)
            key = f"{name}@{args.tag}" if args.tag else name
            merge_results(args.results, key, result)
            print(f"\nbench: figures merged into {args.results} under {key!r}", flush=True)
    except KeyboardInterrupt:
        print("\nbench: interrupted; tearing the stack down...", file=sys.stderr, flush=True)
        rc = 130
    except Exception:  # noqa: BLE001 - report, then clean up
        traceback.print_exc()
        print(f"bench: failed; the service logs are in {args.log_dir}", file=sys.stderr, flush=True)
        rc = 1
    finally:
        stop.set()
        problems = bench_stack.close()
        for problem in problems:
            print(f"bench: cleanup problem: {problem}", file=sys.stderr)
        print(f"bench: stack torn down; total {time.monotonic() - began:.0f}s", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
