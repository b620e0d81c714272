"""Read the dev SMS outbox: this is how a person trying Tuantibu gets their codes.

    python -m shared.sms                          # the newest 20 messages to anyone
    python -m shared.sms --phone 13800138000      # messages to one phone
    python -m shared.sms --phone 13800138000 --limit 5

Reads ``sms_dev.messages`` in ``DATABASE_URL``; phones are shown masked.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime


def _local(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.sms", description="Show messages in the dev SMS outbox"
    )
    parser.add_argument("--phone", help="only messages to this mobile number")
    parser.add_argument("--limit", type=int, default=20, help="how many (newest first)")
    args = parser.parse_args(argv)
    if args.limit < 1:
        parser.error("--limit must be at least 1")

    from shared.config import settings
    from shared.db import make_engine
    from shared.sms import SmsUnavailable
    from shared.sms.dev_outbox import DevOutbox

    s = settings()
    engine = make_engine(s.database_url, pool_size=1)
    try:
        outbox = DevOutbox(engine, key=s.blind_index_key)
        if args.phone:
            try:
                rows = outbox.messages_for(args.phone, limit=args.limit)
            except ValueError as exc:
                parser.error(str(exc))
        else:
            rows = outbox.latest(limit=args.limit)
    except SmsUnavailable as exc:
        print(exc.message, file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    if not rows:
        print("No messages." if not args.phone else "No messages to that phone.")
        return 0
    for row in reversed(rows):  # oldest first, so the newest ends up next to the prompt
        print(f"{_local(row['sent_at'])}  {row['masked_phone']}  {row['text']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
