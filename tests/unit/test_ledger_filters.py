"""Unit tests for shared.ledger_filters: which member-list filters go with which status.
People who left have no health data, so a health filter means active members only."""

from __future__ import annotations

from datetime import date

import pytest

from services.member.memberships import _page_args
from shared.errors import InvalidInput
from shared.ledger_filters import described, parse_filters

HEALTH = {
    "abnormal": "true",
    "code_status": "red",
    "test_age": "h24",
    "test_older_than_hours": "48",
    "no_test": "false",
    "vaccination": "booster",
}


def refusal(args: dict) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse_filters(args)
    return caught.value


@pytest.mark.parametrize("status", ["left", "all"])
@pytest.mark.parametrize("field", sorted(HEALTH))
def test_a_health_filter_beyond_active_members_is_refused_naming_it(status, field):
    error = refusal({"status": status, field: HEALTH[field]})
    assert error.field == field
    assert set(error.details["fields"]) == {field}
    assert "active members only" in error.details["fields"][field]


@pytest.mark.parametrize("status", ["left", "all"])
def test_sorting_by_test_days_beyond_active_members_is_refused(status):
    error = refusal({"status": status, "sort": "test_days"})
    assert set(error.details["fields"]) == {"sort"}
    assert "active members only" in error.details["fields"]["sort"]


def test_every_health_filter_refused_is_named():
    error = refusal({"status": "all", **HEALTH, "sort": "test_days"})
    assert set(error.details["fields"]) == set(HEALTH) | {"sort"}


def test_a_malformed_health_filter_keeps_its_own_reason():
    error = refusal({"status": "left", "code_status": "purple"})
    assert "must be one of" in error.details["fields"]["code_status"]


@pytest.mark.parametrize("field", sorted(HEALTH))
def test_health_filters_stay_for_active_members(field):
    assert field in parse_filters({field: HEALTH[field]})
    assert field in parse_filters({"status": "active", field: HEALTH[field]})


@pytest.mark.parametrize("status", ["left", "all"])
def test_name_search_name_sort_and_join_dates_apply_to_everyone(status):
    f = parse_filters({"status": status, "q": " 王  小 ", "sort": "name", "joined_from": "2026-01-02",
                       "joined_to": "2026-01-31"})
    assert f["status"] == status and f["q"] == "王 小" and f["sort"] == "name" and f["order"] == "asc"
    assert f["joined_from"] == date(2026, 1, 2) and f["joined_to"] == date(2026, 1, 31)


def test_an_unknown_status_is_named_without_refusing_the_health_filters_too():
    error = refusal({"status": "gone", "code_status": "red"})
    assert set(error.details["fields"]) == {"status"}


def test_the_access_log_records_a_status_beyond_active_members():
    assert described(parse_filters({"status": "all", "q": "王", "joined_from": "2026-01-02"})) == {
        "status": "all", "q": "王", "joined_from": "2026-01-02",
    }
    assert described(parse_filters({"status": "active", "code_status": "red"})) == {"code_status": "red"}


@pytest.mark.parametrize("page", ["0", "100001", "99999999999999999999"])
def test_a_page_past_any_ledger_is_refused_naming_it(page):
    # a huge one reached PostgreSQL's OFFSET and came back as a 500
    with pytest.raises(InvalidInput) as refused:
        parse_filters({"page": page})
    assert refused.value.details["fields"] == {"page": "must be a whole number from 1 to 100000"}
    with pytest.raises(InvalidInput) as refused:
        _page_args(page, 50)
    assert refused.value.details["fields"] == {"page": "must be a whole number from 1 to 100000"}
    assert parse_filters({"page": "100000"})["page"] == 100000 and _page_args("100000", 50) == (100000, 50)
