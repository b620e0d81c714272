"""Abnormality under a ledger's rules, and the test-age buckets the stats count."""

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from services.healthsync.ledger_view import evaluate, health_view, test_age_bucket
from shared.errors import InvalidInput
from shared.health import DEFAULT_RULES, rule_labels, validate_rules

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


def snap(**kw):
    base = dict(code_status="green", popup=None, last_test_sampled_at=NOW - timedelta(hours=10),
                last_test_result="negative", pending_seen_at=None, vaccination="booster",
                checked_at=NOW, stale_since=None)
    base.update(kw)
    return SimpleNamespace(**base)


@pytest.mark.parametrize(
    "snapshot, rules, reasons",
    [
        (snap(), {}, []),
        (snap(code_status="yellow"), {}, ["code_not_green"]),
        (snap(code_status="yellow"), {"require_green_code": False}, []),
        (snap(popup="弹窗一"), {}, ["popup"]),
        (snap(popup="弹窗一"), {"popup_is_abnormal": False}, []),
        (snap(last_test_result="positive"), {"max_test_age_hours": None}, ["test_positive"]),
        (snap(last_test_sampled_at=NOW - timedelta(hours=73)), {}, ["test_too_old"]),
        (snap(last_test_sampled_at=NOW - timedelta(hours=71)), {}, []),
        (snap(last_test_sampled_at=NOW - timedelta(hours=25)), {"max_test_age_hours": 24}, ["test_too_old"]),
        (snap(last_test_sampled_at=NOW - timedelta(hours=5), last_test_result="pending"), {"max_test_age_hours": 24}, []),
        (snap(last_test_sampled_at=None, last_test_result=None), {}, ["no_test"]),
        (snap(last_test_sampled_at=None, last_test_result=None), {"max_test_age_hours": None}, []),
        (snap(vaccination="primary"), {"min_vaccination": "booster"}, ["vaccination"]),
        (snap(vaccination="primary"), {"min_vaccination": "primary"}, []),
        (snap(vaccination="unsuitable"), {"min_vaccination": "booster"}, []),
        (snap(vaccination="none_found"), {"min_vaccination": "primary"}, ["vaccination"]),
        (None, {}, ["no_health_data"]),
        (snap(code_status="red", popup="弹窗二", last_test_sampled_at=NOW - timedelta(days=5)), {},
         ["code_not_green", "popup", "test_too_old"]),
    ],
)
def test_every_failed_rule_is_named(snapshot, rules, reasons):
    assert evaluate(snapshot, {**DEFAULT_RULES, **rules}, NOW) == reasons


@pytest.mark.parametrize(
    "snapshot, bucket",
    [
        (snap(last_test_sampled_at=NOW - timedelta(hours=24)), "h24"),
        (snap(last_test_sampled_at=NOW - timedelta(hours=24, minutes=1)), "h48"),
        (snap(last_test_sampled_at=NOW - timedelta(hours=48)), "h48"),
        (snap(last_test_sampled_at=NOW - timedelta(hours=60)), "h72"),
        (snap(last_test_sampled_at=NOW - timedelta(hours=73)), "older"),
        (snap(last_test_sampled_at=None, last_test_result=None), "none"),
        (snap(last_test_result="pending"), "pending"),
        (None, "none"),
    ],
)
def test_age_buckets(snapshot, bucket):
    assert test_age_bucket(snapshot, NOW) == bucket


def test_the_view_says_stale_and_unknown():
    view = health_view(snap(stale_since=NOW), DEFAULT_RULES, NOW)
    assert view["stale"] is True and view["stale_since"] == NOW.isoformat()
    unknown = health_view(None, DEFAULT_RULES, NOW)
    assert unknown["code_status"] == "unknown" and unknown["abnormal"] is True
    assert unknown["abnormal_reasons"] == [{"code": "no_health_data", "label": "暂无健康宝数据"}]


def test_rules_are_validated_field_by_field():
    with pytest.raises(InvalidInput) as err:
        validate_rules({"max_test_age_hours": 36, "min_vaccination": "three doses", "colour": "blue"})
    assert set(err.value.details["fields"]) == {"max_test_age_hours", "min_vaccination", "colour"}
    assert validate_rules({"max_test_age_hours": None})["max_test_age_hours"] is None
    assert "72小时内核酸阴性" in rule_labels(DEFAULT_RULES)
