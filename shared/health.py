"""Health record rules that every service reads the same way.

Test days (核酸天数) count calendar days in Asia/Shanghai from the sampling date to
today, as the Health Kit shows them: sampled today → 0, yesterday → 1, whatever the
hour. While a result is pending the count holds: it stays at the value it had when the
pending result was first seen, and starts moving again once a result is out.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

HEALTH_KIT_TZ = ZoneInfo("Asia/Shanghai")


def local_date(moment: datetime, tz: ZoneInfo = HEALTH_KIT_TZ) -> date:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(tz).date()


def test_days(
    sampled_at: datetime | None,
    result: str | None,
    now: datetime,
    pending_seen_at: datetime | None = None,
    tz: ZoneInfo = HEALTH_KIT_TZ,
) -> int | None:
    """Calendar days since the last sample; ``None`` when there is no test on record."""
    if sampled_at is None:
        return None
    until = now
    if result == "pending":
        until = min(now, pending_seen_at or now)
    return max(0, (local_date(until, tz) - local_date(sampled_at, tz)).days)


test_days.__test__ = False  # not a pytest test, despite its name
