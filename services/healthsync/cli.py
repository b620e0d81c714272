"""Start a comparison run from the command line and watch it to the end.

    python -m services.healthsync.cli run               # every ledger, via RPC
    python -m services.healthsync.cli run --ledger ID   # one ledger
    python -m services.healthsync.cli run --via-bus     # as a message on healthsync.run-requests
    python -m services.healthsync.cli status RUN_ID
"""

from __future__ import annotations

import argparse
import sys
import time

from nameko.standalone.rpc import ClusterRpcProxy

from shared.config import settings


def bar(status: dict, width: int = 30) -> str:
    total = max(status["ledgers_total"], 1)
    done = status["ledgers_done"] + status["ledgers_failed"]
    filled = int(width * done / total) if status["ledgers_total"] else width
    return (
        f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{status['ledgers_total']} ledgers"
        f" ({status['ledgers_failed']} failed), {status['people_compared']} people compared"
    )


def watch(rpc, run_id: str, poll: float = 0.5) -> dict:
    while True:
        status = rpc.healthsync.run_status(run_id)
        sys.stdout.write(bar(status))
        sys.stdout.flush()
        if status["status"] == "finished":
            sys.stdout.write("\n")
            return status
        time.sleep(poll)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.healthsync.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--ledger")
    run.add_argument("--via-bus", action="store_true")
    status = sub.add_parser("status")
    status.add_argument("run_id")
    args = parser.parse_args(argv)
    config = {"AMQP_URI": settings().amqp_uri}
    # starting a run of every ledger assigns every person: allow it more than a plain call
    with ClusterRpcProxy(config, timeout=max(60.0, settings().rpc_timeout)) as rpc:
        if args.command == "status":
            result = watch(rpc, args.run_id)
        elif args.via_bus:
            from services.healthsync.triggers import request_run_by_message

            request_run_by_message(settings().amqp_uri, args.ledger)
            print("run requested on the bus (healthsync.run-requests)")
            return 0
        else:
            started = rpc.healthsync.run_now(args.ledger, "cli")
            print(f"run {started['run_id']} started: {started['ledgers_total']} ledgers")
            result = watch(rpc, started["run_id"])
    print(
        f"finished: {result['ledgers_done']} done, {result['ledgers_failed']} failed, "
        f"{result['people_compared']} people compared, {result['started_at']} → {result['finished_at']}"
    )
    return 0 if result["ledgers_failed"] == 0 else 2


if __name__ == "__main__":
    sys.exit(main())
