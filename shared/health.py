"""Health record rules that every service reads the same way.

Test days (核酸天数) count calendar days in Asia/Shanghai from the sampling date to
today, as the Health Kit shows them: sampled today → 0, yesterday → 1, whatever the
hour. While a result is pending the count holds: it stays at the value it had when the
pending result was first seen, and starts moving again once a result is out.
"""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

HEALTH_KIT_TZ = ZoneInfo("Asia/Shanghai")


def local_date(moment: datetime, tz: ZoneInfo = HEALTH_KIT_TZ) -> date:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(tz).date()


def local_day_start(day: date, tz: ZoneInfo = HEALTH_KIT_TZ) -> datetime:
    """The moment ``day`` begins in ``tz``: a filter on calendar days (join dates) runs
    from one day's start to the start of the day after the last."""
    return datetime.combine(day, time.min, tz)


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


# -- ledger rules (防疫要求) -----------------------------------------------------------

VACCINATION_RANK = {"none_found": 0, "incomplete": 1, "primary": 2, "booster": 3}
MAX_TEST_AGES = (24, 48, 72, 168, None)  # hours; None: no test required
MIN_VACCINATIONS = ("booster", "primary", None)

DEFAULT_RULES = {
    "max_test_age_hours": 72,
    "min_vaccination": None,
    "require_green_code": True,
    "popup_is_abnormal": True,
}

#: Why a member is abnormal, with the words the admins read.
REASON_LABELS = {
    "no_health_data": "暂无健康宝数据",
    "code_not_green": "健康码非绿码",
    "popup": "健康宝弹窗",
    "test_positive": "核酸阳性",
    "no_test": "无核酸记录",
    "test_too_old": "核酸超时",
    "vaccination": "疫苗接种未达要求",
}


def validate_rules(body: dict) -> dict:
    """A complete rule set from a (partial) request body, over the defaults."""
    from shared.errors import InvalidInput

    if not isinstance(body, dict):
        raise InvalidInput("The rules must be a JSON object.", field="body")
    rules = dict(DEFAULT_RULES)
    errors: dict[str, str] = {}
    for key, value in body.items():
        if key not in DEFAULT_RULES:
            errors[key] = "is not a rule"
        elif key == "max_test_age_hours" and value not in MAX_TEST_AGES:
            errors[key] = "must be 24, 48, 72, 168 or null"
        elif key == "min_vaccination" and value not in MIN_VACCINATIONS:
            errors[key] = "must be booster, primary or null"
        elif key in ("require_green_code", "popup_is_abnormal") and not isinstance(value, bool):
            errors[key] = "must be true or false"
        else:
            rules[key] = value
    if errors:
        raise InvalidInput.from_fields(errors)
    return rules


def rule_labels(rules: dict) -> list[str]:
    """The rules in words, for reminders and the ledger page."""
    words = []
    if rules.get("require_green_code"):
        words.append("健康码为绿码")
    if rules.get("max_test_age_hours"):
        hours = rules["max_test_age_hours"]
        words.append(f"{hours // 24}天内核酸阴性" if hours >= 168 else f"{hours}小时内核酸阴性")
    if rules.get("min_vaccination"):
        words.append("完成加强免疫" if rules["min_vaccination"] == "booster" else "完成基础免疫")
    if rules.get("popup_is_abnormal"):
        words.append("无健康宝弹窗")
    return words
