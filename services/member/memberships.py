"""What the member service does: joining, leaving, listing and removing members, and
keeping its projection of ledgers and admins. Plain functions over a session."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.member.models import LedgerAdmin, LedgerKey, LedgerView, Membership
from shared import join_links
from shared.consent import CONSENT_VERSION
from shared.crypto import Crypto
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.masking import mask_id_number, mask_phone
from shared.outbox import add_event
from shared.validation import (
    ID_TYPES,
    FieldError,
    validate_fields,
    validate_id_number,
    validate_name,
    validate_phone,
)

MAX_PAGE_SIZE = 200
LIVE = ("pending", "active")


def now() -> datetime:
    return datetime.now(timezone.utc)


def _uuid(value, what: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise NotFound(f"No such {what}.") from None


def _id_type(value):
    if value in (None, ""):
        return "resident_id"
    if value not in ID_TYPES:
        raise FieldError("unknown_id_type", "must be one of " + ", ".join(ID_TYPES))
    return value


def _consent(value):
    if value is not True:
        raise FieldError("required", "You must agree to the consent text to join.")
    return True


def validate_applicant(body: dict) -> dict:
    body = body if isinstance(body, dict) else {}
    id_type = body.get("id_type") or "resident_id"
    cleaned = validate_fields(
        body,
        {
            "name": validate_name,
            "id_type": _id_type,
            "id_number": lambda v: validate_id_number(id_type, v),
            "phone": validate_phone,
            "consent": _consent,
        },
    )
    version = body.get("consent_version")
    if version not in (None, "", CONSENT_VERSION):
        raise InvalidInput(
            "The consent text has changed; please read it again.",
            field="consent",
            details={"fields": {"consent": "The consent text has changed."}, "reasons": {"consent": "outdated"}},
        )
    return cleaned


# -- the ledger projection ------------------------------------------------------------


def ledger_activated(session: Session, crypto: Crypto, data: dict) -> None:
    ledger = session.get(LedgerView, data["ledger_id"])
    if ledger is None:
        session.add(
            LedgerView(
                ledger_id=data["ledger_id"],
                org_name=data["org_name"],
                status="active",
                qr_version=data["qr_version"],
                member_cap=data["member_cap"],
            )
        )
        _, wrapped = crypto.new_data_key(f"member-ledger:{data['ledger_id']}")
        session.add(LedgerKey(ledger_id=data["ledger_id"], wrapped_key=wrapped))
    session.merge(LedgerAdmin(ledger_id=data["ledger_id"], person_ref=data["owner_ref"], role="owner"))


def qr_rotated(session: Session, data: dict) -> None:
    session.execute(
        update(LedgerView)
        .where(LedgerView.ledger_id == data["ledger_id"], LedgerView.qr_version < data["qr_version"])
        .values(qr_version=data["qr_version"])
    )


def ledger_closed(session: Session, ledger_id: str) -> None:
    """Joins stop; destroying the data key makes every member's stored data unreadable."""
    session.execute(
        update(LedgerView).where(LedgerView.ledger_id == ledger_id).values(status="closed", closed_at=now())
    )
    session.execute(delete(LedgerKey).where(LedgerKey.ledger_id == ledger_id))
    session.execute(
        update(Membership)
        .where(Membership.ledger_id == ledger_id, Membership.status.in_(LIVE))
        .values(status="closed", left_at=now(), left_reason="ledger_closed")
    )


def _cipher(session: Session, crypto: Crypto, ledger_id: str):
    key = session.get(LedgerKey, ledger_id)
    if key is None:
        return None
    return crypto.data_cipher(crypto.unwrap_data_key(f"member-ledger:{ledger_id}", key.wrapped_key))


# -- joining -------------------------------------------------------------------------


def request_join(session: Session, crypto: Crypto, qr_key: bytes, token: str, body: dict, client: str = "") -> dict:
    """A pending membership and ``member.join_requested``, in one transaction."""
    found = join_links.read_token(qr_key, token)
    ledger = session.get(LedgerView, found[0], with_for_update=True) if found else None
    if ledger is None or ledger.qr_version != found[1]:
        raise NotFound("This join link is not valid.")
    if ledger.status != "active":
        raise Conflict("This ledger is closed and no longer accepts members.", details={"reason": "ledger_closed"})
    a = validate_applicant(body)
    person_ref = crypto.person_ref(a["id_type"], a["id_number"])
    existing = session.scalars(
        select(Membership)
        .where(Membership.ledger_id == ledger.ledger_id, Membership.person_ref == person_ref, Membership.status.in_(LIVE))
        .with_for_update()
    ).first()
    if existing is not None and existing.status == "active":
        raise Conflict("You are already a member of this ledger.", details={"reason": "already_member"})
    if existing is not None:
        # an earlier attempt that was never confirmed: this one replaces it
        session.delete(existing)
        session.flush()
    count = session.scalar(
        select(func.count()).select_from(Membership).where(
            Membership.ledger_id == ledger.ledger_id, Membership.status.in_(LIVE)
        )
    )
    if count >= ledger.member_cap:
        raise Conflict("This ledger is full.", details={"reason": "ledger_full"})
    cipher = _cipher(session, crypto, ledger.ledger_id)
    membership_id, challenge_id = str(uuid.uuid4()), str(uuid.uuid4())
    session.add(
        Membership(
            id=membership_id,
            ledger_id=ledger.ledger_id,
            person_ref=person_ref,
            status="pending",
            challenge_id=challenge_id,
            id_type=a["id_type"],
            name_enc=cipher.encrypt_text(a["name"]),
            id_number_enc=cipher.encrypt_text(a["id_number"]),
            phone_enc=cipher.encrypt_text(a["phone"]),
            consent_version=CONSENT_VERSION,
            consented_at=now(),
            requested_at=now(),
        )
    )
    try:
        session.flush()
    except IntegrityError:
        # a concurrent join of the same person to the same ledger won the race
        raise Conflict("A join for this person is already in progress.", details={"reason": "join_in_progress"}) from None
    applicant = crypto.seal(
        "verify", {"name": a["name"], "id_type": a["id_type"], "id_number": a["id_number"], "phone": a["phone"]}
    )
    add_event(
        session,
        "member.join_requested",
        {
            "membership_id": membership_id,
            "ledger_id": ledger.ledger_id,
            "challenge_id": challenge_id,
            "applicant": applicant,
            "client": client,
        },
        membership_id,
    )
    return {
        "membership_id": membership_id,
        "challenge_id": challenge_id,
        "ledger_id": ledger.ledger_id,
        "masked_phone": mask_phone(a["phone"]),
        "status": "pending",
    }


def activate(session: Session, crypto: Crypto, membership_id: str, challenge_id: str, person_ref: str) -> bool:
    m = session.get(Membership, membership_id, with_for_update=True)
    if m is None or m.status != "pending" or m.challenge_id != challenge_id or m.person_ref != person_ref:
        return False
    ledger = session.get(LedgerView, m.ledger_id)
    cipher = _cipher(session, crypto, m.ledger_id)
    if ledger is None or ledger.status != "active" or cipher is None:
        return False
    m.status = "active"
    m.joined_at = now()
    subject = crypto.seal("healthsync", {"id_type": m.id_type, "id_number": cipher.decrypt_text(m.id_number_enc)})
    add_event(
        session,
        "member.joined",
        {
            "membership_id": m.id,
            "ledger_id": m.ledger_id,
            "person_ref": person_ref,
            "subject": subject,
            "joined_at": m.joined_at.isoformat(),
        },
        m.id,
    )
    return True


def discard_pending(session: Session, membership_id: str, challenge_id: str) -> bool:
    """Verification failed or expired: the pending membership and its data go."""
    result = session.execute(
        delete(Membership).where(
            Membership.id == membership_id, Membership.status == "pending", Membership.challenge_id == challenge_id
        )
    )
    return result.rowcount > 0


def sweep_abandoned(session: Session, older_than_seconds: int) -> int:
    """Remove pending memberships nobody confirmed (a safety net behind verify's
    expiry events). Safe to run on several instances at once."""
    result = session.execute(
        delete(Membership).where(
            Membership.status == "pending",
            Membership.requested_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, older_than_seconds),
        )
    )
    return result.rowcount


# -- leaving and removal -------------------------------------------------------------


def _end(session: Session, m: Membership, status: str, reason: str) -> None:
    person_ref = m.person_ref
    m.status = status
    m.left_at = now()
    m.left_reason = reason
    m.person_ref = None
    m.id_number_enc = None
    m.phone_enc = None
    add_event(
        session,
        "member.left",
        {
            "membership_id": m.id,
            "ledger_id": m.ledger_id,
            "person_ref": person_ref,
            "reason": status,
            "left_at": m.left_at.isoformat(),
        },
        m.id,
    )


def leave(session: Session, membership_id: str, person_ref: str) -> dict:
    m = session.get(Membership, _uuid(membership_id, "membership"), with_for_update=True)
    if m is None or m.person_ref != person_ref or m.status != "active":
        raise NotFound("No such membership.")
    _end(session, m, "left", "left by the member")
    return {"membership_id": m.id, "status": m.status, "left_at": m.left_at.isoformat()}


def require_admin(session: Session, ledger_id: str, person_ref: str) -> LedgerView:
    ledger = session.get(LedgerView, _uuid(ledger_id, "ledger"))
    if ledger is None:
        raise NotFound("No such ledger.")
    admin = session.get(LedgerAdmin, (ledger.ledger_id, person_ref))
    if admin is None:
        raise Forbidden("Only this ledger's admins can see or change its members.")
    return ledger


def remove_member(session: Session, ledger_id: str, membership_id: str, person_ref: str, reason) -> dict:
    ledger = require_admin(session, ledger_id, person_ref)
    reason = validate_fields({"reason": reason}, {"reason": _reason})["reason"]
    m = session.get(Membership, _uuid(membership_id, "member"), with_for_update=True)
    if m is None or m.ledger_id != ledger.ledger_id or m.status != "active":
        raise NotFound("No such member.")
    _end(session, m, "removed", reason)
    return {"membership_id": m.id, "status": m.status, "left_at": m.left_at.isoformat()}


def _reason(value):
    if not isinstance(value, str) or not value.strip():
        raise FieldError("required", "Give a reason for removing this member.")
    value = " ".join(value.split())
    if len(value) > 200:
        raise FieldError("too_long", "The reason is longer than 200 characters.")
    return value


def _page_args(page, page_size) -> tuple[int, int]:
    errors = {}
    try:
        page = int(page or 1)
        if page < 1:
            raise ValueError
    except (TypeError, ValueError):
        errors["page"] = "must be a whole number from 1"
    try:
        page_size = int(page_size or 50)
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError
    except (TypeError, ValueError):
        errors["page_size"] = f"must be a whole number from 1 to {MAX_PAGE_SIZE}"
    if errors:
        raise InvalidInput.from_fields(errors)
    return page, page_size


STATUS_FILTERS = {"active": ("active",), "left": ("left", "removed"), "all": ("active", "left", "removed")}


def list_members(
    session: Session, crypto: Crypto, ledger_id: str, person_ref: str, page=1, page_size=50, status="active"
) -> dict:
    """A page of members: name in full, ID and phone masked. Nothing unmasked leaves."""
    ledger = require_admin(session, ledger_id, person_ref)
    page, page_size = _page_args(page, page_size)
    statuses = STATUS_FILTERS.get(status or "active")
    if statuses is None:
        raise InvalidInput.from_fields({"status": "must be one of " + ", ".join(STATUS_FILTERS)})
    where = (Membership.ledger_id == ledger.ledger_id, Membership.status.in_(statuses))
    total = session.scalar(select(func.count()).select_from(Membership).where(*where))
    rows = session.scalars(
        select(Membership)
        .where(*where)
        .order_by(func.coalesce(Membership.left_at, Membership.joined_at).desc(), Membership.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    cipher = _cipher(session, crypto, ledger.ledger_id)
    items = [member_view(cipher, m) for m in rows] if cipher else []
    return {"items": items, "total": total, "page": page, "page_size": page_size}


def member_view(cipher, m: Membership) -> dict:
    return {
        "member_id": m.id,
        "name": cipher.decrypt_text(m.name_enc),
        "id_type": m.id_type,
        "id_number": mask_id_number(cipher.decrypt_text(m.id_number_enc)) if m.id_number_enc else None,
        "phone": mask_phone(cipher.decrypt_text(m.phone_enc)) if m.phone_enc else None,
        "status": m.status,
        "joined_at": m.joined_at.isoformat() if m.joined_at else None,
        "left_at": m.left_at.isoformat() if m.left_at else None,
        "left_reason": m.left_reason if m.status != "active" else None,
    }


def my_memberships(session: Session, person_ref: str) -> list[dict]:
    rows = session.execute(
        select(Membership, LedgerView)
        .join(LedgerView, LedgerView.ledger_id == Membership.ledger_id)
        .where(Membership.person_ref == person_ref, Membership.status.in_(("active", "closed")))
        .order_by(Membership.joined_at.desc())
    ).all()
    return [
        {
            "membership_id": m.id,
            "ledger_id": m.ledger_id,
            "org_name": ledger.org_name,
            "joined_at": m.joined_at.isoformat() if m.joined_at else None,
            "status": m.status,
            "ledger_status": ledger.status,
        }
        for m, ledger in rows
    ]
