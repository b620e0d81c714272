"""Test days (核酸天数), table-driven: calendar days in Asia/Shanghai, holding while a
result is pending."""

from datetime import date, datetime, timedelta, timezone

import pytest

from shared.health import local_date, local_day_start
from shared.health import test_days as days

UTC = timezone.utc
SH = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    "sampled_at, result, now, pending_seen_at, expected",
    [
        # same Shanghai day → 0, whatever the hour
        (datetime(2026, 11, 28, 8, 0, tzinfo=SH), "negative", datetime(2026, 11, 28, 23, 59, tzinfo=SH), None, 0),
        # one minute before midnight, then one minute after → 1 day
        (datetime(2026, 11, 27, 23, 59, tzinfo=SH), "negative", datetime(2026, 11, 28, 0, 1, tzinfo=SH), None, 1),
        # exactly midnight counts as the new day
        (datetime(2026, 11, 27, 12, 0, tzinfo=SH), "negative", datetime(2026, 11, 28, 0, 0, tzinfo=SH), None, 1),
        # 16:30 UTC is 00:30 next day in Shanghai: the Health Kit's calendar wins
        (datetime(2026, 11, 27, 16, 30, tzinfo=UTC), "negative", datetime(2026, 11, 28, 10, 0, tzinfo=SH), None, 0),
        # 15:59 UTC is still the 27th in Shanghai
        (datetime(2026, 11, 27, 15, 59, tzinfo=UTC), "negative", datetime(2026, 11, 28, 10, 0, tzinfo=SH), None, 1),
        # a week of days
        (datetime(2026, 11, 21, 9, 0, tzinfo=SH), "negative", datetime(2026, 11, 28, 9, 0, tzinfo=SH), None, 7),
        # positive results count the same way
        (datetime(2026, 11, 26, 9, 0, tzinfo=SH), "positive", datetime(2026, 11, 28, 9, 0, tzinfo=SH), None, 2),
        # pending: the count holds at the day it was first seen pending
        (datetime(2026, 11, 25, 9, 0, tzinfo=SH), "pending", datetime(2026, 11, 28, 9, 0, tzinfo=SH),
         datetime(2026, 11, 25, 20, 0, tzinfo=SH), 0),
        (datetime(2026, 11, 25, 9, 0, tzinfo=SH), "pending", datetime(2026, 11, 28, 9, 0, tzinfo=SH),
         datetime(2026, 11, 26, 1, 0, tzinfo=SH), 1),
        # pending seen only now: counts to now
        (datetime(2026, 11, 27, 9, 0, tzinfo=SH), "pending", datetime(2026, 11, 28, 9, 0, tzinfo=SH), None, 1),
        # no test on record
        (None, None, datetime(2026, 11, 28, 9, 0, tzinfo=SH), None, None),
        # a clock slightly behind the Health Kit never gives negative days
        (datetime(2026, 11, 28, 9, 0, tzinfo=SH), "negative", datetime(2026, 11, 27, 23, 0, tzinfo=SH), None, 0),
    ],
)
def test_days_follow_the_health_kit_calendar(sampled_at, result, now, pending_seen_at, expected):
    assert days(sampled_at, result, now, pending_seen_at) == expected


def test_naive_times_are_refused():
    with pytest.raises(ValueError):
        days(datetime(2026, 11, 28, 9, 0), "negative", datetime(2026, 11, 28, 9, 0, tzinfo=SH))


def test_a_calendar_day_starts_at_midnight_in_shanghai():
    start = local_day_start(date(2026, 11, 28))
    assert start == datetime(2026, 11, 27, 16, 0, tzinfo=UTC)
    assert local_date(start) == date(2026, 11, 28)
    assert local_date(start - timedelta(microseconds=1)) == date(2026, 11, 27)
