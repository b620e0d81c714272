"""Operators' commands for ledgers.

    python -m services.org.cli set-member-cap LEDGER_ID N   # how many members a ledger accepts

A new ledger accepts ``LEDGER_MEMBER_CAP`` members (10,000 unless configured). An
organisation that needs more asks the operator, who raises its cap here; the member
service hears of it by event within moments, and joins beyond the old cap go through.
"""

from __future__ import annotations

import argparse
import sys

from nameko.exceptions import RemoteError, RpcTimeout, UnknownService
from nameko.standalone.rpc import ClusterRpcProxy

from shared.config import settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.org.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    cap = sub.add_parser("set-member-cap", help="how many members a ledger accepts")
    cap.add_argument("ledger_id")
    cap.add_argument("member_cap", type=int)
    args = parser.parse_args(argv)
    with ClusterRpcProxy({"AMQP_URI": settings().amqp_uri}, timeout=settings().rpc_timeout) as rpc:
        try:
            changed = rpc.org.set_member_cap(args.ledger_id, args.member_cap)
        except RemoteError as error:  # our own errors: which ledger or value, and why
            print(f"not changed: {error.value}", file=sys.stderr)
            return 1
        except (RpcTimeout, UnknownService):
            print(f"not changed: the org service did not answer within {settings().rpc_timeout:g} s; "
                  "is it running? (make status)", file=sys.stderr)
            return 1
    print(f"{changed['org_name']} ({changed['ledger_id']}): member cap {changed['was']:,} → {changed['member_cap']:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
