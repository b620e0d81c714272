"""The health side of a ledger's member list: rules, abnormality, filters, sorting and
stats, evaluated in one place (plain Python over one query per request, so the list,
the stats, the alerts and the reminders can never disagree)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from services.healthsync.models import LedgerAdmin, LedgerRules, LedgerSync, Member, Snapshot
from shared.health import DEFAULT_RULES, HEALTH_KIT_TZ, REASON_LABELS, VACCINATION_RANK, local_day_start, test_days
from shared.healthkit import VACCINATIONS
from shared.ledger_filters import CODE_FILTERS, TEST_AGE_BUCKETS


def load_rules(session: Session, ledger_id: str) -> dict:
    return _rules_of(session.get(LedgerRules, ledger_id))


def admin_rules(session: Session, ledger_id: str, person_ref: str) -> tuple[dict, datetime | None] | None:
    """The ledger's rules and when it closed (None while open) if ``person_ref`` is (or,
    for a closed ledger, was) one of its admins, else None: the check and the rules of
    every admin read in one query."""
    row = session.execute(
        select(LedgerAdmin.ledger_closed_at, LedgerRules)
        .outerjoin(LedgerRules, LedgerRules.ledger_id == LedgerAdmin.ledger_id)
        .where(LedgerAdmin.ledger_id == ledger_id, LedgerAdmin.person_ref == person_ref)
    ).first()
    return None if row is None else (_rules_of(row[1]), row[0])


def _rules_of(row: LedgerRules | None) -> dict:
    if row is None:
        return dict(DEFAULT_RULES)
    return {
        "max_test_age_hours": row.max_test_age_hours,
        "min_vaccination": row.min_vaccination,
        "require_green_code": row.require_green_code,
        "popup_is_abnormal": row.popup_is_abnormal,
    }


def evaluate(s: Any, rules: dict, at: datetime) -> list[str]:
    """Every rule this snapshot fails (reason codes, see ``REASON_LABELS``)."""
    return evaluator(rules, at)(s)


def evaluator(rules: dict, at: datetime):
    """``evaluate`` for many snapshots under the same rules and time (the list and the
    stats run it over a whole ledger)."""
    green, popups = rules["require_green_code"], rules["popup_is_abnormal"]
    max_age = rules["max_test_age_hours"]
    oldest = at - timedelta(hours=max_age) if max_age else None
    minimum = VACCINATION_RANK[rules["min_vaccination"]] if rules["min_vaccination"] else None

    def reasons_of(s: Any) -> list[str]:
        if s is None or s.code_status is None:
            return ["no_health_data"]
        reasons = []
        if green and s.code_status != "green":
            reasons.append("code_not_green")
        if popups and s.popup:
            reasons.append("popup")
        if s.last_test_result == "positive":
            reasons.append("test_positive")
        if oldest is not None:
            if s.last_test_sampled_at is None:
                reasons.append("no_test")
            elif s.last_test_sampled_at < oldest:
                reasons.append("test_too_old")
        # 不适宜接种 (medically unsuitable) satisfies any minimum
        if minimum is not None and s.vaccination != "unsuitable" and VACCINATION_RANK.get(s.vaccination, 0) < minimum:
            reasons.append("vaccination")
        return reasons

    return reasons_of


def test_age_bucket(s: Any, at: datetime) -> str:
    if s is None or s.last_test_sampled_at is None:
        return "none"
    if s.last_test_result == "pending":
        return "pending"
    age = at - s.last_test_sampled_at
    if age <= timedelta(hours=24):
        return "h24"
    if age <= timedelta(hours=48):
        return "h48"
    if age <= timedelta(hours=72):
        return "h72"
    return "older"


test_age_bucket.__test__ = False


def health_view(s: Any, rules: dict, at: datetime) -> dict:
    present = s is not None and s.code_status is not None
    reasons = evaluate(s if present else None, rules, at)
    return {
        "code_status": s.code_status if present else "unknown",
        "popup": s.popup if present else None,
        "test_result": (s.last_test_result or "none") if present else "none",
        "test_sampled_at": s.last_test_sampled_at.isoformat() if present and s.last_test_sampled_at else None,
        "test_days": test_days(s.last_test_sampled_at, s.last_test_result, at, s.pending_seen_at) if present else None,
        "vaccination": s.vaccination if present else None,
        "synced_at": s.checked_at.isoformat() if present and s.checked_at else None,
        "stale": bool(present and s.stale_since is not None),
        "stale_since": s.stale_since.isoformat() if present and s.stale_since else None,
        "abnormal": bool(reasons),
        "abnormal_reasons": [{"code": r, "label": REASON_LABELS[r]} for r in reasons],
    }


def ledger_rows_query(ledger_id: str):
    return (
        select(
            Member.membership_id,
            Member.joined_at,
            Snapshot.code_status,
            Snapshot.popup,
            Snapshot.last_test_sampled_at,
            Snapshot.last_test_result,
            Snapshot.pending_seen_at,
            Snapshot.vaccination,
            Snapshot.checked_at,
            Snapshot.stale_since,
        )
        .outerjoin(Snapshot, Snapshot.person_ref == Member.person_ref)
        .where(Member.ledger_id == ledger_id)
    )


def ledger_rows(session: Session, ledger_id: str) -> list:
    return session.execute(ledger_rows_query(ledger_id)).all()


# -- the query -------------------------------------------------------------------------


def _keep(row, abnormal: bool, f: dict, at: datetime) -> bool:
    present = row.code_status is not None
    if "abnormal" in f and abnormal != f["abnormal"]:
        return False
    if "code_status" in f and (row.code_status if present else "unknown") != f["code_status"]:
        return False
    if "test_age" in f and test_age_bucket(row if present else None, at) != f["test_age"]:
        return False
    if "test_older_than_hours" in f:
        sampled = row.last_test_sampled_at
        if sampled is None or sampled >= at - timedelta(hours=f["test_older_than_hours"]):
            return False
    if f.get("no_test") is True and row.last_test_sampled_at is not None:
        return False
    if f.get("no_test") is False and row.last_test_sampled_at is None:
        return False
    if "vaccination" in f and row.vaccination != f["vaccination"]:
        return False
    if "joined_from" in f or "joined_to" in f:
        joined = row.joined_at.astimezone(HEALTH_KIT_TZ).date()
        if "joined_from" in f and joined < f["joined_from"]:
            return False
        if "joined_to" in f and joined > f["joined_to"]:
            return False
    return True


def query(session: Session, ledger_id: str, f: dict, everything: bool = False, rules: dict | None = None) -> dict:
    """Matching members with their health, sorted. Unless the caller must still filter
    or sort by name (which only the member service can read), or asks for
    ``everything``, only the requested page is returned (and only its rows are dressed
    for display)."""
    at = datetime.now(timezone.utc)
    rules = rules if rules is not None else load_rules(session, ledger_id)
    if f["sort"] == "joined_at" and not (everything or f.get("q")):
        return _query_in_sql(session, ledger_id, f, rules, at)
    reasons_of = evaluator(rules, at)
    matched = [row for row in ledger_rows(session, ledger_id) if _keep(row, bool(reasons_of(row)), f, at)]
    reverse = f["order"] == "desc"
    if f["sort"] == "test_days":
        # more days first when descending (on the same day, the earlier sample first);
        # no test on record last either way
        def days(row):
            return test_days(row.last_test_sampled_at, row.last_test_result, at, row.pending_seen_at)

        known = [r for r in matched if r.last_test_sampled_at is not None]
        unknown = [r for r in matched if r.last_test_sampled_at is None]
        known.sort(key=lambda r: (days(r), -r.last_test_sampled_at.timestamp(), r.membership_id), reverse=reverse)
        matched = known + unknown
    else:
        matched.sort(key=lambda r: (r.joined_at, r.membership_id), reverse=reverse)
    paged = not (everything or f.get("q") or f["sort"] == "name")
    if paged:
        start = (f["page"] - 1) * f["page_size"]
        chosen = matched[start : start + f["page_size"]]
    else:
        chosen = matched
    items = [{"member_id": row.membership_id, **health_view(row, rules, at)} for row in chosen]
    return {"items": items, "total": len(matched), "paged": paged}


def _test_age_sql(bucket: str, at: datetime):
    s = Snapshot
    sampled, pending = s.last_test_sampled_at, s.last_test_result == "pending"
    known_test = and_(sampled.is_not(None), or_(s.last_test_result.is_(None), ~pending))
    hours = {"h24": (None, 24), "h48": (24, 48), "h72": (48, 72), "older": (72, None)}
    if bucket == "none":
        return sampled.is_(None)
    if bucket == "pending":
        return and_(sampled.is_not(None), pending)
    newer_than, older_than = hours[bucket]
    conditions = [known_test]
    if newer_than is not None:
        conditions.append(sampled < at - timedelta(hours=newer_than))
    if older_than is not None:
        conditions.append(sampled >= at - timedelta(hours=older_than))
    return and_(*conditions)


def _filters_sql(f: dict, rules: dict, at: datetime) -> list:
    """The list's filters as SQL conditions (the same meaning as :func:`_keep`)."""
    s = Snapshot
    conditions = []
    if "abnormal" in f:
        abnormal = func.coalesce(abnormal_sql(rules, at), False)
        conditions.append(abnormal if f["abnormal"] else ~abnormal)
    if "code_status" in f:
        if f["code_status"] == "unknown":
            conditions.append(or_(s.code_status.is_(None), s.code_status == "unknown"))
        else:
            conditions.append(s.code_status == f["code_status"])
    if "test_age" in f:
        conditions.append(_test_age_sql(f["test_age"], at))
    if "test_older_than_hours" in f:
        conditions.append(s.last_test_sampled_at < at - timedelta(hours=f["test_older_than_hours"]))
    if f.get("no_test") is True:
        conditions.append(s.last_test_sampled_at.is_(None))
    if f.get("no_test") is False:
        conditions.append(s.last_test_sampled_at.is_not(None))
    if "vaccination" in f:
        conditions.append(s.vaccination == f["vaccination"])
    if "joined_from" in f:
        conditions.append(Member.joined_at >= local_day_start(f["joined_from"]))
    if "joined_to" in f:
        conditions.append(Member.joined_at < local_day_start(f["joined_to"] + timedelta(days=1)))
    return conditions


def _query_in_sql(session: Session, ledger_id: str, f: dict, rules: dict, at: datetime) -> dict:
    """The common case (sorted by join time, a page): filtered, counted and paged by
    PostgreSQL; only the page comes back."""
    conditions = _filters_sql(f, rules, at)
    order = (Member.joined_at.desc(), Member.membership_id.desc()) if f["order"] == "desc" else (
        Member.joined_at.asc(), Member.membership_id.asc())
    # the page and the total in one pass
    rows = session.execute(
        ledger_rows_query(ledger_id).add_columns(func.count().over().label("total")).where(*conditions).order_by(*order)
        .offset((f["page"] - 1) * f["page_size"]).limit(f["page_size"])
    ).all()
    if rows:
        total = rows[0].total
    else:  # past the last page
        total = session.scalar(
            select(func.count()).select_from(Member)
            .outerjoin(Snapshot, Snapshot.person_ref == Member.person_ref)
            .where(Member.ledger_id == ledger_id, *conditions)
        )
    items = [{"member_id": row.membership_id, **health_view(row, rules, at)} for row in rows]
    return {"items": items, "total": total, "paged": True}


def abnormal_sql(rules: dict, at: datetime):
    """:func:`evaluator`'s rules as one SQL condition over a member's (outer-joined)
    snapshot, for counting a whole ledger inside PostgreSQL. A test holds the two to the
    same answers."""
    s = Snapshot
    conditions = [s.code_status.is_(None), s.last_test_result == "positive"]
    if rules["require_green_code"]:
        conditions.append(s.code_status != "green")
    if rules["popup_is_abnormal"]:
        conditions.append(and_(s.popup.is_not(None), s.popup != ""))
    if rules["max_test_age_hours"]:
        oldest = at - timedelta(hours=rules["max_test_age_hours"])
        conditions.append(or_(s.last_test_sampled_at.is_(None), s.last_test_sampled_at < oldest))
    if rules["min_vaccination"]:
        rank = case(*((s.vaccination == v, r) for v, r in VACCINATION_RANK.items()), else_=0)
        conditions.append(and_(s.vaccination != "unsuitable", rank < VACCINATION_RANK[rules["min_vaccination"]]))
    return or_(*conditions)


def iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def stats(session: Session, ledger_id: str, rules: dict | None = None) -> dict:
    """The ledger's counts, in one statement (the ledger is counted where it lives)."""
    at = datetime.now(timezone.utc)
    rules = rules if rules is not None else load_rules(session, ledger_id)
    s = Snapshot
    count = func.count()
    sampled, pending = s.last_test_sampled_at, s.last_test_result == "pending"
    known_test = and_(sampled.is_not(None), or_(s.last_test_result.is_(None), ~pending))
    columns = {
        "members_total": count,
        "abnormal": count.filter(abnormal_sql(rules, at)),
        "stale": count.filter(s.stale_since.is_not(None)),
        "code:green": count.filter(s.code_status == "green"),
        "code:yellow": count.filter(s.code_status == "yellow"),
        "code:red": count.filter(s.code_status == "red"),
        "code:unknown": count.filter(or_(s.code_status.is_(None), s.code_status.not_in(("green", "yellow", "red")))),
        "age:none": count.filter(sampled.is_(None)),
        "age:pending": count.filter(and_(sampled.is_not(None), pending)),
        "age:h24": count.filter(and_(known_test, sampled >= at - timedelta(hours=24))),
        "age:h48": count.filter(and_(known_test, sampled < at - timedelta(hours=24), sampled >= at - timedelta(hours=48))),
        "age:h72": count.filter(and_(known_test, sampled < at - timedelta(hours=48), sampled >= at - timedelta(hours=72))),
        "age:older": count.filter(and_(known_test, sampled < at - timedelta(hours=72))),
        **{f"vaccination:{v}": count.filter(s.vaccination == v) for v in VACCINATIONS},
        # how fresh the data is: each person was checked on joining, by runs and re-checks
        "checked:from": func.min(s.checked_at),
        "checked:to": func.max(s.checked_at),
    }
    row = session.execute(
        select(*(c.label(k.replace(":", "_")) for k, c in columns.items()))
        .select_from(Member)
        .outerjoin(Snapshot, Snapshot.person_ref == Member.person_ref)
        .where(Member.ledger_id == ledger_id)
    ).one()._asdict()
    counts = {
        "members_total": row["members_total"],
        "abnormal": row["abnormal"],
        "stale": row["stale"],
        "code_status": {c: row[f"code_{c}"] for c in CODE_FILTERS},
        "test_age": {b: row[f"age_{b}"] for b in TEST_AGE_BUCKETS},
        "vaccination": {v: row[f"vaccination_{v}"] for v in VACCINATIONS},
    }
    counts["checked_from"], counts["checked_to"] = iso(row["checked_from"]), iso(row["checked_to"])
    sync = session.get(LedgerSync, ledger_id)
    counts["last_run_at"] = iso(sync.last_success_at) if sync else None
    counts["rules"] = rules
    return counts
