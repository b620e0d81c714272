"""What the member service does: joining, leaving, listing and removing members, and
keeping its projection of ledgers and admins. Plain functions over a session."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.member.live_counts import LiveCounts
from services.member.models import AccessRecord, LedgerAdmin, LedgerKey, LedgerView, Membership, Reminder
from shared import join_links
from shared.consent import CONSENT_VERSION
from shared.crypto import Crypto
from shared.errors import Conflict, Forbidden, InvalidInput, LedgerClosed, NotFound
from shared.health import local_day_start
from shared.ledger_filters import MAX_PAGE, MAX_PAGE_SIZE, is_phone_tail, parse_filters
from shared.masking import mask_id_number, mask_phone
from shared.outbox import add_event
from shared.validation import (
    FieldError,
    person_spec,
    validate_fields,
)

LIVE = ("pending", "active")
# The join path's statements are built once, over the tables, with a parameter for each
# value: through the ORM a statement costs about twice the CPU (entity loading, autoflush,
# unit of work), and one built per call costs more to build than to run.
LEDGERS, KEYS, MEMBERSHIPS = LedgerView.__table__, LedgerKey.__table__, Membership.__table__
LEDGER_AND_KEY = (  # the cipher of the ledger's data key is gone once it closed
    select(LEDGERS, KEYS.c.wrapped_key)
    .outerjoin(KEYS, KEYS.c.ledger_id == LEDGERS.c.ledger_id)
    .where(LEDGERS.c.ledger_id == bindparam("ledger_id"))
)
LIVE_MEMBERSHIP = (
    select(MEMBERSHIPS.c.id, MEMBERSHIPS.c.status, MEMBERSHIPS.c.challenge_id, MEMBERSHIPS.c.phone_enc)
    .where(
        MEMBERSHIPS.c.ledger_id == bindparam("ledger_id"),
        MEMBERSHIPS.c.person_ref == bindparam("person_ref"),
        MEMBERSHIPS.c.status.in_(LIVE),
    )
    .with_for_update()
)
DROP_MEMBERSHIP = delete(MEMBERSHIPS).where(MEMBERSHIPS.c.id == bindparam("membership_id"))
ADD_MEMBERSHIP = insert(MEMBERSHIPS)
ACTIVATE = (  # a pending membership of this verification, in a ledger still open
    update(MEMBERSHIPS)
    .where(
        MEMBERSHIPS.c.id == bindparam("membership_id"),
        MEMBERSHIPS.c.status == "pending",
        MEMBERSHIPS.c.challenge_id == bindparam("challenge"),  # (a column's own name
        MEMBERSHIPS.c.person_ref == bindparam("person"),  # would mean "set it")
        LEDGERS.c.ledger_id == MEMBERSHIPS.c.ledger_id,
        LEDGERS.c.status == "active",
        KEYS.c.ledger_id == MEMBERSHIPS.c.ledger_id,
    )
    .values(status="active", joined_at=bindparam("at"))
    .returning(MEMBERSHIPS.c.ledger_id, MEMBERSHIPS.c.id_type, MEMBERSHIPS.c.id_number_enc, KEYS.c.wrapped_key)
)

def now() -> datetime:
    return datetime.now(timezone.utc)


def _uuid(value, what: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise NotFound(f"No such {what}.") from None


def _consent(value):
    if value is not True:
        raise FieldError("required", "You must agree to the consent text to join.")
    return True


def validate_applicant(body: dict) -> dict:
    body = body if isinstance(body, dict) else {}
    cleaned = validate_fields(body, {**person_spec(body), "consent": _consent})
    version = body.get("consent_version")
    if version not in (None, "", CONSENT_VERSION):
        raise InvalidInput(
            "The consent text has changed; please read it again.",
            field="consent",
            details={"fields": {"consent": "The consent text has changed."}, "reasons": {"consent": "outdated"}},
        )
    return cleaned


# -- the ledger projection ------------------------------------------------------------


def learn_ledger(session: Session, crypto: Crypto, data: dict) -> None:
    """Add a ledger to the projection (and make its data key) unless it is there."""
    session.execute(
        pg_insert(LedgerView)
        .values(ledger_id=data["ledger_id"], org_name=data["org_name"], status="active",
                qr_version=data["qr_version"], member_cap=data["member_cap"])
        .on_conflict_do_nothing()
    )
    _, wrapped = crypto.new_data_key(f"member-ledger:{data['ledger_id']}")
    session.execute(
        pg_insert(LedgerKey).values(ledger_id=data["ledger_id"], wrapped_key=wrapped).on_conflict_do_nothing()
    )


def ledger_activated(session: Session, crypto: Crypto, data: dict) -> None:
    learn_ledger(session, crypto, data)
    admin_added(
        session,
        {"ledger_id": data["ledger_id"], "person_ref": data["owner_ref"], "role": "owner",
         "masked_name": data.get("owner_name") or "", "admin_id": data.get("owner_admin_id"),
         "masked_phone": data.get("owner_phone") or ""},
    )


def admin_added(session: Session, data: dict) -> None:
    session.merge(
        LedgerAdmin(
            ledger_id=data["ledger_id"], person_ref=data["person_ref"], role=data["role"],
            masked_name=data.get("masked_name") or "", admin_id=data.get("admin_id"),
            masked_phone=data.get("masked_phone") or "",
        )
    )


def admin_removed(session: Session, data: dict) -> None:
    session.execute(
        delete(LedgerAdmin).where(LedgerAdmin.ledger_id == data["ledger_id"], LedgerAdmin.person_ref == data["person_ref"])
    )


def qr_rotated(session: Session, data: dict) -> None:
    session.execute(
        update(LedgerView)
        .where(LedgerView.ledger_id == data["ledger_id"], LedgerView.qr_version < data["qr_version"])
        .values(qr_version=data["qr_version"])
    )


def member_cap_changed(session: Session, data: dict) -> None:
    """The ledger's new cap, unless a later change is here already. A ledger member has
    not heard of yet (its activation is still on the way) raises, so the event is
    retried after it."""
    changed_at = datetime.fromisoformat(data["changed_at"])
    applied = session.execute(
        update(LedgerView)
        .where(
            LedgerView.ledger_id == data["ledger_id"],
            or_(LedgerView.cap_changed_at.is_(None), LedgerView.cap_changed_at < changed_at),
        )
        .values(member_cap=data["member_cap"], cap_changed_at=changed_at)
    ).rowcount
    if not applied and session.get(LedgerView, data["ledger_id"]) is None:
        raise NotFound("member has not heard of this ledger yet")


def ledger_closed(session: Session, ledger_id: str, closed_at: datetime | None = None) -> None:
    """Joins stop; destroying the data key makes every member's stored data unreadable.
    ``closed_at``: when org closed it (the event's time), which its admins are told."""
    session.execute(
        update(LedgerView).where(LedgerView.ledger_id == ledger_id).values(status="closed", closed_at=closed_at or now())
    )
    session.execute(delete(LedgerKey).where(LedgerKey.ledger_id == ledger_id))
    # a join not confirmed yet never made its person a member: it goes, with its data
    session.execute(delete(Membership).where(Membership.ledger_id == ledger_id, Membership.status == "pending"))
    session.execute(
        update(Membership)
        .where(Membership.ledger_id == ledger_id, Membership.status.in_(LIVE))
        .values(status="closed", left_at=now(), left_reason="ledger_closed")
    )


def _open_ledger(session: Session, crypto: Crypto, ledger_id: str):
    """The ledger (a row of the projection) and the cipher of its member-data key, in
    one query: (None, None) if unknown; the cipher is None once the ledger closed."""
    ledger = session.execute(LEDGER_AND_KEY, {"ledger_id": ledger_id}).first()
    if ledger is None:
        return None, None
    wrapped = ledger.wrapped_key
    return ledger, crypto.open_data_key(f"member-ledger:{ledger_id}", wrapped) if wrapped is not None else None


# -- joining -------------------------------------------------------------------------


def request_join(
    session: Session, crypto: Crypto, qr_key: bytes, token: str, body: dict, client: str = "", ask_org=None,
    live_counts: LiveCounts | None = None,
) -> dict:
    """A pending membership and ``member.join_requested``, in one transaction.

    ``ask_org(token)`` answers for a genuine token whose ledger the projection has not
    heard of yet (activated a moment ago). ``live_counts`` is the process's memory of
    ledger counts for the member cap (without it every join counts)."""
    found = join_links.read_token(qr_key, token)
    ledger, cipher = _open_ledger(session, crypto, found[0]) if found else (None, None)
    if found and ledger is None and ask_org is not None:
        info = ask_org(token)
        if info["status"] == "active":
            learn_ledger(session, crypto, info)
            session.flush()
            ledger, cipher = _open_ledger(session, crypto, found[0])
    # no lock on the ledger: joins to one ledger run side by side (the unique index keeps
    # one live membership per person); the cap may be passed by a few concurrent joins
    if ledger is None or ledger.qr_version != found[1]:
        raise NotFound("This join link is not valid.")
    if ledger.status != "active" or cipher is None:
        raise Conflict("This ledger is closed and no longer accepts members.", details={"reason": "ledger_closed"})
    a = validate_applicant(body)
    person_ref = crypto.person_ref(a["id_type"], a["id_number"])
    def count_live() -> int:
        return session.scalar(
            select(func.count()).select_from(MEMBERSHIPS).where(
                MEMBERSHIPS.c.ledger_id == ledger.ledger_id, MEMBERSHIPS.c.status.in_(LIVE)
            )
        )

    def refuse_if_full() -> None:
        if (live_counts or LiveCounts(seconds=0)).full(ledger.ledger_id, ledger.member_cap, count_live):
            raise Conflict("This ledger is full.", details={"reason": "ledger_full"})

    existing = session.execute(LIVE_MEMBERSHIP, {"ledger_id": ledger.ledger_id, "person_ref": person_ref}).first()
    # What the ledger holds for this ID number is said only once the Health Kit agrees
    # with the details (verify answers instead of sending a code): answering at once
    # would tell anyone holding the QR code whether an ID number belongs here, or is
    # joining right now. Such a request looks like any other (a new membership id,
    # the full ledger refused first).
    if existing is not None and existing.status == "active":
        refuse_if_full()
        return _ask_about(session, crypto, ledger.ledger_id, a, client, "already_member")
    replaces = None
    if existing is not None:
        # An earlier attempt, not confirmed yet. The same person again (a reload, a
        # second tab) replaces it, and verify ends its code. Anyone else who has this ID
        # number cannot cancel a join under way.
        if cipher.decrypt_text(existing.phone_enc) != a["phone"]:
            refuse_if_full()
            return _ask_about(session, crypto, ledger.ledger_id, a, client, "join_in_progress")
        session.execute(DROP_MEMBERSHIP, {"membership_id": existing.id})
        replaces = existing.challenge_id
    refuse_if_full()
    membership_id, challenge_id = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        session.execute(ADD_MEMBERSHIP, {
            "id": membership_id,
            "ledger_id": ledger.ledger_id,
            "person_ref": person_ref,
            "status": "pending",
            "challenge_id": challenge_id,
            "id_type": a["id_type"],
            "name_enc": cipher.encrypt_text(a["name"]),
            "id_number_enc": cipher.encrypt_text(a["id_number"]),
            "phone_enc": cipher.encrypt_text(a["phone"]),
            "consent_version": CONSENT_VERSION,
            "consented_at": now(),
            "requested_at": now(),
        })
    except IntegrityError:
        # a concurrent join of the same person to the same ledger won the race
        raise Conflict("A join for this person is already in progress.", details={"reason": "join_in_progress"}) from None
    _join_requested(session, crypto, ledger.ledger_id, membership_id, challenge_id, a, client, replaces=replaces)
    return {
        "membership_id": membership_id,
        "challenge_id": challenge_id,
        "ledger_id": ledger.ledger_id,
        "masked_phone": mask_phone(a["phone"]),
        "status": "pending",
    }


def _ask_about(session: Session, crypto: Crypto, ledger_id: str, a: dict, client: str, answer: str) -> dict:
    """A join request the ledger cannot take (already a member, or a join under way from
    another phone): verify checks the details like any other's and, if the Health Kit
    agrees, answers ``answer`` (no code, no change). The membership id is a throwaway,
    so nothing tells this request from one that made a membership."""
    membership_id, challenge_id = str(uuid.uuid4()), str(uuid.uuid4())
    _join_requested(session, crypto, ledger_id, membership_id, challenge_id, a, client, answer=answer)
    return {
        "membership_id": membership_id, "challenge_id": challenge_id, "ledger_id": ledger_id,
        "masked_phone": mask_phone(a["phone"]), "status": "pending",
    }


def _join_requested(
    session: Session, crypto: Crypto, ledger_id: str, membership_id: str, challenge_id: str, a: dict, client: str,
    replaces: str | None = None, answer: str | None = None,
) -> None:
    """``member.join_requested`` for verify: the applicant sealed for it alone."""
    applicant = crypto.seal(
        "verify", {"name": a["name"], "id_type": a["id_type"], "id_number": a["id_number"], "phone": a["phone"]}
    )
    add_event(
        session,
        "member.join_requested",
        {
            "membership_id": membership_id, "ledger_id": ledger_id, "challenge_id": challenge_id,
            "applicant": applicant, "client": client, "replaces": replaces, "answer": answer,
        },
        membership_id,
    )


def join_state(session: Session, membership_id: str, person_ref: str) -> str | None:
    """What became of this person's join: ``pending`` (not activated yet), ``active``, or
    None when it ended without them joining (replaced by a newer request, or the ledger
    closed). Only the person's own."""
    return session.scalar(
        select(Membership.status).where(Membership.id == membership_id, Membership.person_ref == person_ref)
    ) if membership_id else None


def activate(session: Session, crypto: Crypto, membership_id: str, challenge_id: str, person_ref: str) -> bool:
    """The pending membership this verification was for becomes active, if its ledger
    still is (one statement), and ``member.joined`` says so."""
    joined_at = now()
    m = session.execute(ACTIVATE, {
        "membership_id": membership_id, "challenge": challenge_id, "person": person_ref, "at": joined_at,
    }).first()
    if m is None:
        return False
    cipher = crypto.open_data_key(f"member-ledger:{m.ledger_id}", m.wrapped_key)
    subject = crypto.seal("healthsync", {"id_type": m.id_type, "id_number": cipher.decrypt_text(m.id_number_enc)})
    add_event(
        session,
        "member.joined",
        {
            "membership_id": membership_id,
            "ledger_id": m.ledger_id,
            "person_ref": person_ref,
            "subject": subject,
            "joined_at": joined_at.isoformat(),
        },
        membership_id,
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


def _end(session: Session, m: Membership, status: str, reason: str | None) -> None:
    """The membership ends (left by the member, or removed by an admin with a reason)."""
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
    _end(session, m, "left", None)
    return {"membership_id": m.id, "status": m.status, "left_at": m.left_at.isoformat()}


def require_admin(session: Session, ledger_id: str, person_ref: str) -> LedgerView:
    """The ledger, for one of its admins to act on; LedgerClosed once it closed."""
    ledger = _admin(session, ledger_id, person_ref)[0]
    # after the admin check: nobody else learns that a ledger closed
    LedgerClosed.if_closed(ledger)
    return ledger


def _admin(session: Session, ledger_id: str, person_ref: str) -> tuple[LedgerView, LedgerAdmin]:
    ledger = session.get(LedgerView, _uuid(ledger_id, "ledger"))
    if ledger is None:
        raise NotFound("No such ledger.")
    admin = session.get(LedgerAdmin, (ledger.ledger_id, person_ref))
    if admin is None:
        raise Forbidden("Only this ledger's admins can see or change its members.")
    return ledger, admin


def _reader(session: Session, crypto: Crypto, ledger_id: str, person_ref: str):
    """``_admin`` and the ledger's cipher in one query: (ledger, admin, cipher or None),
    for reading its member data: LedgerClosed once it closed."""
    ledger_id = _uuid(ledger_id, "ledger")
    row = session.execute(
        select(LedgerView, LedgerAdmin, LedgerKey.wrapped_key)
        .outerjoin(LedgerAdmin, (LedgerAdmin.ledger_id == LedgerView.ledger_id) & (LedgerAdmin.person_ref == person_ref))
        .outerjoin(LedgerKey, LedgerKey.ledger_id == LedgerView.ledger_id)
        .where(LedgerView.ledger_id == ledger_id)
    ).first()
    if row is None:
        raise NotFound("No such ledger.")
    ledger, admin, wrapped = row
    if admin is None:
        raise Forbidden("Only this ledger's admins can see or change its members.")
    LedgerClosed.if_closed(ledger)
    cipher = crypto.open_data_key(f"member-ledger:{ledger_id}", wrapped) if wrapped is not None else None
    return ledger, admin, cipher


def record_access(session: Session, admin: LedgerAdmin, view: str, filters: dict | None) -> None:
    """Every view or export of member data is recorded, in the transaction that serves it,
    with who the admin is as the owner's admins list shows them (id, masked name and
    phone, role), so two admins of one surname are told apart."""
    session.execute(
        insert(AccessRecord).values(
            ledger_id=admin.ledger_id, person_ref=admin.person_ref, admin_id=admin.admin_id,
            admin_name=admin.masked_name or "", admin_phone=admin.masked_phone or None,
            role=admin.role, view=view[:40], filters=filters or {},
        )
    )


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
        if not 1 <= page <= MAX_PAGE:
            raise ValueError
    except (TypeError, ValueError):
        errors["page"] = f"must be a whole number from 1 to {MAX_PAGE}"
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
    session: Session, crypto: Crypto, ledger_id: str, person_ref: str, page=1, page_size=50, status="active",
    order: str = "desc", q: str | None = None, sort_by_name: bool = False, joined_from: str | None = None,
    joined_to: str | None = None, filters: dict | None = None,
) -> dict:
    """A page of members: name in full, ID and phone masked. Nothing unmasked leaves.
    ``q`` (a part of the name) and ``sort_by_name`` decrypt the matching members'
    names and filter and sort them here; ``joined_from``/``joined_to`` are ISO dates,
    calendar days in Asia/Shanghai. ``filters`` are recorded in the access log as
    the admin gave them."""
    ledger, admin, cipher = _reader(session, crypto, ledger_id, person_ref)
    if filters is None:
        filters = {} if (status or "active") == "active" else {"status": status}
    record_access(session, admin, "members", filters)
    page, page_size = _page_args(page, page_size)
    statuses = STATUS_FILTERS.get(status or "active")
    if statuses is None:
        raise InvalidInput.from_fields({"status": "must be one of " + ", ".join(STATUS_FILTERS)})
    where = [Membership.ledger_id == ledger.ledger_id, Membership.status.in_(statuses)]
    days = parse_filters({"joined_from": joined_from, "joined_to": joined_to})  # checked as the gateway does
    if "joined_from" in days:
        where.append(Membership.joined_at >= local_day_start(days["joined_from"]))
    if "joined_to" in days:
        where.append(Membership.joined_at < local_day_start(days["joined_to"] + timedelta(days=1)))
    # active members by join time (an index walk); those who left by when they left
    when = Membership.joined_at if statuses == ("active",) else func.coalesce(Membership.left_at, Membership.joined_at)
    ordering = (when.asc(), Membership.id.asc()) if order == "asc" else (when.desc(), Membership.id.desc())
    if q or sort_by_name:  # names are encrypted: every match is read, then filtered and sorted here
        if cipher is None:
            return {"items": [], "total": 0, "page": page, "page_size": page_size}
        rows = session.execute(select(*MEMBER_VIEW_COLUMNS).where(*where).order_by(*ordering)).all()
        named = by_name([member_view(cipher, m) for m in rows], q, sort_by_name, order)
        start = (page - 1) * page_size
        return {"items": named[start : start + page_size], "total": len(named), "page": page, "page_size": page_size}
    # the count apart: with the page it would cost the whole ledger's rows, not an index walk
    total = session.scalar(select(func.count()).select_from(Membership).where(*where))
    rows = session.execute(
        select(*MEMBER_VIEW_COLUMNS)
        .where(*where)
        .order_by(*ordering)
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    items = [member_view(cipher, m) for m in rows] if cipher else []
    return {"items": items, "total": total, "page": page, "page_size": page_size}


def by_name(views: list[dict], q: str | None, sort_by_name: bool, order: str) -> list[dict]:
    """Members whose name contains ``q`` (any case), or whose phone ends in it when it is
    four digits (what the masked phone shows, 138****5678: two people of one name are
    told apart by it), in their order or by name."""
    if q and is_phone_tail(q):
        views = [v for v in views if (v.get("phone") or "").endswith(q)]
    elif q:
        needle = q.casefold()
        views = [v for v in views if needle in v["name"].casefold()]
    if sort_by_name:
        views = sorted(views, key=lambda v: (v["name"], v["member_id"]), reverse=order == "desc")
    return views


# what member_view reads: a page is loaded as plain rows of these, not as ORM objects
MEMBER_VIEW_COLUMNS = (
    Membership.id, Membership.name_enc, Membership.id_type, Membership.id_number_enc, Membership.phone_enc,
    Membership.status, Membership.joined_at, Membership.left_at, Membership.left_reason,
)


def member_view(cipher, m) -> dict:
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


def belonging(session: Session, person_refs: list[str]) -> list[str]:
    """Which of these people have a live membership anywhere (active, or a join under way)."""
    return list(session.scalars(
        select(Membership.person_ref).distinct().where(Membership.person_ref.in_(person_refs), Membership.status.in_(LIVE))
    ))


def people_of_closed_ledger(session: Session, ledger_id: str) -> list[str]:
    """Everyone who was a member when the ledger closed (whether they still belong
    anywhere is :func:`belonging`'s question). Conflict while member has not closed the
    ledger itself yet (the caller asks again later); nobody for a ledger member never
    heard of (it had no members)."""
    status = session.scalar(select(LedgerView.status).where(LedgerView.ledger_id == ledger_id))
    if status is None:
        return []
    if status != "closed":
        raise Conflict("member has not closed this ledger yet", details={"reason": "not_closed_yet"})
    return list(session.scalars(
        select(Membership.person_ref).distinct().where(
            Membership.ledger_id == ledger_id, Membership.status == "closed", Membership.person_ref.is_not(None)
        )
    ))


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


# -- the composed ledger view (with healthsync's filters) ---------------------------------


def member_details(
    session: Session, crypto: Crypto, ledger_id: str, person_ref: str, ids: list[str], view: str, filters: dict
) -> dict:
    """Masked details of these members (a page chosen by healthsync's filters)."""
    ledger, admin, cipher = _reader(session, crypto, ledger_id, person_ref)
    record_access(session, admin, view, filters)
    if cipher is None or not ids:
        return {}
    rows = session.execute(
        select(*MEMBER_VIEW_COLUMNS).where(Membership.ledger_id == ledger.ledger_id, Membership.id.in_(ids))
    ).all()
    return {m.id: member_view(cipher, m) for m in rows}


def search_members(
    session: Session, crypto: Crypto, ledger_id: str, person_ref: str, ids: list[str], q: str | None,
    sort_by_name: bool, order: str, page: int, page_size: int, view: str, filters: dict,
) -> dict:
    """Filter healthsync's matches by name and/or sort them by name, then page: only
    this service can read names."""
    ledger, admin, cipher = _reader(session, crypto, ledger_id, person_ref)
    record_access(session, admin, view, filters)
    if cipher is None or not ids:
        return {"items": [], "total": 0}
    rows = session.execute(
        select(*MEMBER_VIEW_COLUMNS).where(Membership.ledger_id == ledger.ledger_id, Membership.id.in_(ids))
    ).all()
    views = {m.id: member_view(cipher, m) for m in rows}
    ordered = by_name([views[i] for i in ids if i in views], q, sort_by_name, order)
    start = (page - 1) * page_size
    return {"items": ordered[start : start + page_size], "total": len(ordered)}


# -- accountability -----------------------------------------------------------------------


def access_log(session: Session, ledger_id: str, person_ref: str, page=1, page_size=50) -> dict:
    """A page of the ledger's access log for its owner, newest first, with ``total``
    (everything kept, ``ACCESS_LOG_DAYS``): who (admin id, masked name and phone, role),
    when, which view and filters."""
    ledger, admin = _admin(session, ledger_id, person_ref)
    if admin.role != "owner":
        raise Forbidden("Only the ledger's owner can read its access log.")
    return _access_page(session, [AccessRecord.ledger_id == ledger.ledger_id], page, page_size, for_owner=True)


def forget_old_access(session: Session, keep_days: int) -> int:
    """The access log is kept ``keep_days`` days."""
    result = session.execute(
        delete(AccessRecord).where(AccessRecord.at < func.now() - func.make_interval(0, 0, 0, keep_days))
    )
    return result.rowcount


def _access_page(session: Session, where: list, page, page_size, for_owner: bool) -> dict:
    page, page_size = _page_args(page, page_size)
    total = session.scalar(select(func.count()).select_from(AccessRecord).where(*where))
    rows = session.scalars(
        select(AccessRecord).where(*where)
        .order_by(AccessRecord.at.desc(), AccessRecord.id.desc())
        .offset((page - 1) * page_size).limit(page_size)
    ).all()
    return {"items": [_access_view(r, for_owner) for r in rows], "total": total, "page": page, "page_size": page_size}


def _access_view(r: AccessRecord, for_owner: bool) -> dict:
    """An entry: ``id`` (a later page may repeat an entry when newer ones came in
    between: the page skips what it has), the admin's id, masked name and role; for the
    owner also their masked phone (as the admins list shows it) and the filters."""
    item = {"id": r.id, "admin_id": r.admin_id, "admin_name": r.admin_name, "role": r.role,
            "at": r.at.isoformat(), "view": r.view}
    if for_owner:
        item["admin_phone"] = r.admin_phone
        item["filters"] = r.filters
    return item


def views_of_my_ledger(session: Session, membership_id: str, person_ref: str, page=1, page_size=50) -> dict:
    """Who viewed the ledger's member data since this member joined, a page at a time,
    newest first: admins by masked name and role (and their id, which tells two of one
    surname apart), no phone."""
    m = session.get(Membership, _uuid(membership_id, "membership"))
    if m is None or m.person_ref != person_ref or m.status not in ("active", "closed"):
        raise NotFound("No such membership.")
    where = [AccessRecord.ledger_id == m.ledger_id, AccessRecord.at >= m.joined_at]
    return _access_page(session, where, page, page_size, for_owner=False)


# -- reminders ----------------------------------------------------------------------------


def send_reminders(
    session: Session, crypto: Crypto, sms, ledger_id: str, person_ref: str, abnormal: dict[str, list[str]],
    rule_text: str,
) -> dict:
    """An SMS (fixed template naming the org and the failed rule) to each abnormal
    member, at most one per member per day; every one recorded."""
    from shared.health import HEALTH_KIT_TZ, REASON_LABELS

    ledger, admin, cipher = _reader(session, crypto, ledger_id, person_ref)
    today = datetime.now(HEALTH_KIT_TZ).date()
    already = set(
        session.scalars(
            select(Reminder.membership_id).where(Reminder.ledger_id == ledger.ledger_id, Reminder.sent_on == today)
        )
    )
    members = session.scalars(
        select(Membership).where(
            Membership.ledger_id == ledger.ledger_id, Membership.status == "active", Membership.id.in_(list(abnormal))
        )
    ).all()
    sent, skipped = [], []
    for m in members:
        if m.id in already:
            skipped.append(m.id)
            continue
        failed = "、".join(REASON_LABELS.get(r, r) for r in abnormal[m.id]) or rule_text
        session.add(Reminder(ledger_id=ledger.ledger_id, membership_id=m.id, sent_on=today,
                             sent_by=person_ref, rule=failed[:120]))
        session.flush()
        sms.send(cipher.decrypt_text(m.phone_enc), "health_reminder", {"org_name": ledger.org_name, "rule": failed})
        sent.append(m.id)
    record_access(session, admin, "reminders", {"sent": len(sent)})
    return {"sent": len(sent), "skipped_already_today": len(skipped), "sent_to": sent}
