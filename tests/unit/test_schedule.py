"""Which scheduled time is due (Asia/Shanghai times of day, a catch-up window)."""

from datetime import datetime, timezone

from services.healthsync.comparison import Comparison
from shared.config import load_settings


def due(at_utc: datetime, **env):
    cfg = load_settings({"SYNC_TIMES": "06:00,09:00,12:00,16:00", **env})
    return Comparison(None, None, None, cfg).due_slot(at_utc)


def test_a_time_just_passed_is_due():
    # 09:05 in Shanghai is 01:05 UTC
    assert due(datetime(2026, 11, 28, 1, 5, tzinfo=timezone.utc)) == datetime(2026, 11, 28, 1, 0, tzinfo=timezone.utc)


def test_nothing_is_due_outside_the_catch_up_window():
    assert due(datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc)) is None  # 10:00 Shanghai


def test_yesterdays_last_slot_counts_after_midnight():
    # 16:00 Shanghai = 08:00 UTC; catch-up of a day for the test
    at = datetime(2026, 11, 28, 21, 0, tzinfo=timezone.utc)  # 05:00 next day in Shanghai
    assert due(at, SCHEDULE_CATCHUP_MINUTES="1440") == datetime(2026, 11, 28, 8, 0, tzinfo=timezone.utc)


def test_no_times_no_schedule():
    assert due(datetime(2026, 11, 28, 1, 5, tzinfo=timezone.utc), SYNC_TIMES="") is None
