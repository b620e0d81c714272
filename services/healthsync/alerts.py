"""Alerts for admins (a member became abnormal, got a new reason to be while already
abnormal, or stopped being), read marks per admin, and the opt-in daily SMS digest."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, aliased

from services.healthsync.models import Alert, AlertRead, DigestSubscription
from shared.errors import InvalidInput
from shared.health import REASON_LABELS

MAX_ALERTS = 200

#: Reasons that name one problem, no valid test: an old test record turning up where
#: there was none (无核酸记录 → 核酸超时), or the reverse, is nothing new for the admin.
_SAME_PROBLEM = {"no_test": "test_too_old", "test_too_old": "no_test"}


def alert_for(was: list[str], now: list[str]) -> tuple[str, list[str]] | None:
    """The alert (kind, reasons) for a member whose reasons to be abnormal under one
    ledger's rules went from ``was`` to ``now``, or None when there is nothing to tell.

    became_abnormal carries every current reason, back_to_normal the reasons that went,
    worsened (abnormal before and after) only the reasons that are new: with a test rule
    most of a ledger is abnormal for an old test, and its admin must still hear when one
    of them turns red."""
    if not was:
        return ("became_abnormal", list(now)) if now else None
    if not now:
        return "back_to_normal", list(was)
    new = [r for r in now if r not in was and _SAME_PROBLEM.get(r) not in was]
    return ("worsened", new) if new else None


def _read(person_ref: str, alert=Alert):
    return exists().where(AlertRead.alert_id == alert.id, AlertRead.person_ref == person_ref)


def list_alerts(session: Session, ledger_id: str, person_ref: str, limit: int = 100) -> dict:
    # the newest alerts and the unread count in one statement, so from one snapshot: two
    # statements could count an alert written between them that the list does not show
    other = aliased(Alert)
    unread = (
        select(func.count()).select_from(other)
        .where(other.ledger_id == ledger_id, ~_read(person_ref, other))
        .scalar_subquery()
    )
    rows = session.execute(
        select(Alert, _read(person_ref).label("read"), unread.label("unread"))
        .where(Alert.ledger_id == ledger_id)
        .order_by(Alert.at.desc(), Alert.id.desc())
        .limit(min(limit, MAX_ALERTS))
    ).all()
    subscribed = session.get(DigestSubscription, (ledger_id, person_ref)) is not None
    return {
        "items": [
            {
                "alert_id": a.id,
                "member_id": a.membership_id,
                "kind": a.kind,
                "reasons": [{"code": r, "label": REASON_LABELS.get(r, r)} for r in a.reasons],
                "at": a.at.isoformat(),
                "read": bool(read),
            }
            for a, read, _ in rows
        ],
        # no alert listed: none in this ledger (in the same snapshot), so none unread
        "unread": rows[0].unread if rows else 0,
        "digest": subscribed,
    }


def mark_read(session: Session, ledger_id: str, person_ref: str, alert_ids: list | None) -> dict:
    query = select(Alert.id).where(Alert.ledger_id == ledger_id, ~_read(person_ref))
    if alert_ids is not None:
        if not isinstance(alert_ids, list) or not all(isinstance(i, int) for i in alert_ids):
            raise InvalidInput.from_fields({"alert_ids": "must be a list of alert ids"})
        query = query.where(Alert.id.in_(alert_ids))
    ids = session.scalars(query).all()
    if ids:
        session.execute(
            pg_insert(AlertRead).values([{"alert_id": i, "person_ref": person_ref} for i in ids]).on_conflict_do_nothing()
        )
    return {"marked": len(ids)}


def set_digest(session: Session, ledger_id: str, person_ref: str, enabled) -> dict:
    if not isinstance(enabled, bool):
        raise InvalidInput.from_fields({"enabled": "must be true or false"})
    if enabled:
        session.execute(
            pg_insert(DigestSubscription).values(ledger_id=ledger_id, person_ref=person_ref).on_conflict_do_nothing()
        )
    else:
        session.execute(
            delete(DigestSubscription).where(
                DigestSubscription.ledger_id == ledger_id, DigestSubscription.person_ref == person_ref
            )
        )
    return {"digest": enabled}


def due_digests(session: Session, at: datetime | None = None) -> list[dict]:
    """Subscriptions with new alerts and no digest in the last 24 hours; marks them
    sent (the caller sends in the same transaction, so a failure sends nothing twice)."""
    at = at or datetime.now(timezone.utc)
    subs = session.scalars(
        select(DigestSubscription)
        .where((DigestSubscription.last_sent_at.is_(None)) | (DigestSubscription.last_sent_at < at - timedelta(days=1)))
        .with_for_update(skip_locked=True)
    ).all()
    due = []
    for sub in subs:
        since = sub.last_sent_at or at - timedelta(days=1)
        count = session.scalar(
            select(func.count()).select_from(Alert).where(Alert.ledger_id == sub.ledger_id, Alert.at > since)
        )
        if count:
            due.append({"ledger_id": sub.ledger_id, "person_ref": sub.person_ref, "count": count})
            session.execute(
                update(DigestSubscription)
                .where(DigestSubscription.ledger_id == sub.ledger_id, DigestSubscription.person_ref == sub.person_ref)
                .values(last_sent_at=at)
            )
    return due
