"""The query parameters of a ledger's member list (and its exports), validated in one
place: the gateway checks them before composing the view; healthsync applies them to
active members, member the name search, name sort and join dates to everyone else.
People who left have no health data, so a health filter means active members only."""

from __future__ import annotations

from datetime import date
from typing import Any

from shared.errors import InvalidInput
from shared.healthkit import VACCINATIONS

CODE_FILTERS = ("green", "yellow", "red", "unknown")
TEST_AGE_BUCKETS = ("h24", "h48", "h72", "older", "none", "pending")
SORTS = ("joined_at", "test_days", "name")
MAX_PAGE_SIZE = 200
#: far past any ledger's end (10,000 members by default), and within PostgreSQL's OFFSET
MAX_PAGE = 100_000
#: filters on health data, which only active members have
ACTIVE_ONLY = ("abnormal", "code_status", "test_age", "test_older_than_hours", "no_test", "vaccination")
#: the filters healthsync applies to active members (health, and join dates in its projection)
HEALTH_FILTERS = ACTIVE_ONLY + ("joined_from", "joined_to")
STATUSES = ("active", "left", "all")
ONLY_ACTIVE = "applies to active members only: people who left have no health data here"


def is_phone_tail(q: str) -> bool:
    """A search for the last four digits of a phone (what the masked phone 138****5678
    shows), not for a part of a name."""
    return len(q) == 4 and q.isascii() and q.isdigit()


def needs_health(f: dict) -> bool:
    return any(k in f for k in HEALTH_FILTERS) or f["sort"] == "test_days"


def described(f: dict) -> dict:
    """The filters as recorded in the access log and printed on exports."""
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in f.items()
            if k in HEALTH_FILTERS + ("q",) or (k in ("sort", "order") and f["sort"] != "joined_at")
            or (k == "status" and v != "active")}


def _date(value: str, field: str, errors: dict) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors[field] = "must be a date like 2026-11-28"
        return None


def parse_filters(args: dict) -> dict:
    """Validate the list's query parameters; InvalidInput names every bad one."""
    args = {k: v for k, v in (args or {}).items() if v not in (None, "")}
    errors: dict[str, str] = {}
    f: dict[str, Any] = {}
    if "abnormal" in args:
        if args["abnormal"] not in ("true", "false", True, False):
            errors["abnormal"] = "must be true or false"
        else:
            f["abnormal"] = args["abnormal"] in ("true", True)
    if "code_status" in args:
        if args["code_status"] not in CODE_FILTERS:
            errors["code_status"] = "must be one of " + ", ".join(CODE_FILTERS)
        else:
            f["code_status"] = args["code_status"]
    if "test_age" in args:
        if args["test_age"] not in TEST_AGE_BUCKETS:
            errors["test_age"] = "must be one of " + ", ".join(TEST_AGE_BUCKETS)
        else:
            f["test_age"] = args["test_age"]
    if "test_older_than_hours" in args:
        try:
            hours = int(args["test_older_than_hours"])
            if not 0 < hours <= 24 * 365:
                raise ValueError
            f["test_older_than_hours"] = hours
        except (TypeError, ValueError):
            errors["test_older_than_hours"] = "must be a whole number of hours from 1"
    if "no_test" in args:
        if args["no_test"] not in ("true", "false", True, False):
            errors["no_test"] = "must be true or false"
        else:
            f["no_test"] = args["no_test"] in ("true", True)
    if "vaccination" in args:
        if args["vaccination"] not in VACCINATIONS:
            errors["vaccination"] = "must be one of " + ", ".join(VACCINATIONS)
        else:
            f["vaccination"] = args["vaccination"]
    joined_from = _date(args.get("joined_from"), "joined_from", errors)
    joined_to = _date(args.get("joined_to"), "joined_to", errors)
    if joined_from:
        f["joined_from"] = joined_from
    if joined_to:
        f["joined_to"] = joined_to
    if joined_from and joined_to and joined_from > joined_to:
        errors["joined_to"] = "must not be before joined_from"
    if args.get("q"):
        q = " ".join(str(args["q"]).split())
        if len(q) > 30:
            errors["q"] = "must be at most 30 characters"
        f["q"] = q
    sort = args.get("sort", "joined_at")
    if sort not in SORTS:
        errors["sort"] = "must be one of " + ", ".join(SORTS)
    order = args.get("order", "desc" if sort == "joined_at" else "asc")
    if order not in ("asc", "desc"):
        errors["order"] = "must be asc or desc"
    f["sort"], f["order"] = sort, order
    try:
        f["page"] = int(args.get("page", 1))
        if not 1 <= f["page"] <= MAX_PAGE:
            raise ValueError
    except (TypeError, ValueError):
        errors["page"] = f"must be a whole number from 1 to {MAX_PAGE}"
    try:
        f["page_size"] = int(args.get("page_size", 50))
        if not 1 <= f["page_size"] <= MAX_PAGE_SIZE:
            raise ValueError
    except (TypeError, ValueError):
        errors["page_size"] = f"must be a whole number from 1 to {MAX_PAGE_SIZE}"
    status = args.get("status", "active")
    if status not in STATUSES:
        errors["status"] = "must be one of " + ", ".join(STATUSES)
    f["status"] = status
    if status in ("left", "all"):
        for k in ACTIVE_ONLY:
            if k in args:
                errors.setdefault(k, ONLY_ACTIVE)
        if sort == "test_days":
            errors.setdefault("sort", "test_days " + ONLY_ACTIVE)
    if errors:
        raise InvalidInput.from_fields(errors)
    return f


