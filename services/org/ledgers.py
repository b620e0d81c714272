"""What the org service does with ledgers and their admins: plain functions over a
SQLAlchemy session, no framework."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.org.models import Admin, Ledger, LedgerKey
from shared import join_links
from shared.crypto import Crypto
from shared.errors import Conflict, Forbidden, InvalidInput, LedgerClosed, NotFound
from shared.health import DEFAULT_RULES, HEALTH_KIT_TZ, rule_labels, validate_rules
from shared.masking import mask_id_number, mask_name, mask_phone
from shared.outbox import add_event
from shared.validation import (
    FieldError,
    person_spec,
    validate_fields,
    validate_text,
)


def _ends_on(value):
    if value in (None, ""):
        return None
    try:
        day = date.fromisoformat(str(value))
    except ValueError:
        raise FieldError("bad_format", "must be a date like 2026-12-31") from None
    if day < datetime.now(HEALTH_KIT_TZ).date():
        raise FieldError("in_the_past", "must be today or later")
    return day


def validate_application(application: dict) -> dict:
    """Check every field of a ledger application; InvalidInput names each bad one."""
    application = application if isinstance(application, dict) else {}
    return validate_fields(
        application,
        {
            "org_name": lambda v: validate_text(v, 60),
            "org_address": lambda v: validate_text(v, 120),
            **person_spec(application, prefix="admin_"),
            "ends_on": _ends_on,
        },
    )


def validate_person(body: dict) -> dict:
    """A co-admin to invite: name, document and phone."""
    body = body if isinstance(body, dict) else {}
    return validate_fields(body, person_spec(body))


def _ledger_cipher(session: Session, crypto: Crypto, ledger_id: str):
    """The cipher of the ledger's data key; None once the ledger closed (key destroyed)."""
    key = session.get(LedgerKey, ledger_id)
    return crypto.open_data_key(f"ledger:{ledger_id}", key.wrapped_key) if key else None


def register_ledger(
    session: Session, crypto: Crypto, application: dict, client: str = "", member_cap: int = 10000
) -> dict:
    """A pending ledger, its owner-to-be, and ``org.ledger_registered`` for verify."""
    a = validate_application(application)
    ledger_id = str(uuid.uuid4())
    challenge_id = str(uuid.uuid4())
    data_key, wrapped = crypto.new_data_key(f"ledger:{ledger_id}")
    cipher = crypto.data_cipher(data_key)
    session.add(
        Ledger(
            id=ledger_id,
            org_name=a["org_name"],
            org_address=a["org_address"],
            status="pending",
            qr_version=1,
            member_cap=member_cap,
            owner_challenge_id=challenge_id,
            ends_on=a.get("ends_on"),
            **DEFAULT_RULES,
        )
    )
    session.flush()
    session.add(LedgerKey(ledger_id=ledger_id, wrapped_key=wrapped))
    session.add(
        Admin(
            id=str(uuid.uuid4()),
            ledger_id=ledger_id,
            person_ref=crypto.person_ref(a["admin_id_type"], a["admin_id_number"]),
            role="owner",
            status="pending",
            id_type=a["admin_id_type"],
            phone_index=crypto.phone_index(a["admin_phone"]),
            name_enc=cipher.encrypt_text(a["admin_name"]),
            id_number_enc=cipher.encrypt_text(a["admin_id_number"]),
            phone_enc=cipher.encrypt_text(a["admin_phone"]),
        )
    )
    applicant = crypto.seal(
        "verify",
        {
            "name": a["admin_name"],
            "id_type": a["admin_id_type"],
            "id_number": a["admin_id_number"],
            "phone": a["admin_phone"],
        },
    )
    add_event(
        session,
        "org.ledger_registered",
        {"ledger_id": ledger_id, "challenge_id": challenge_id, "applicant": applicant, "client": client},
        ledger_id,
    )
    return {
        "ledger_id": ledger_id,
        "challenge_id": challenge_id,
        "masked_phone": mask_phone(a["admin_phone"]),
        "status": "pending",
    }


def activate_ledger(session: Session, crypto: Crypto, ledger_id: str, challenge_id: str, person_ref: str) -> bool:
    """The owner passed verification: the ledger and its owner become active."""
    ledger = session.get(Ledger, ledger_id, with_for_update=True)
    if ledger is None or ledger.status != "pending" or ledger.owner_challenge_id != challenge_id:
        return False
    owner = session.scalars(
        select(Admin).where(Admin.ledger_id == ledger_id, Admin.role == "owner")
    ).one()
    if owner.person_ref != person_ref:
        return False
    now = datetime.now(timezone.utc)
    ledger.status = "active"
    ledger.activated_at = now
    owner.status = "active"
    cipher = _ledger_cipher(session, crypto, ledger_id)
    add_event(
        session,
        "org.ledger_activated",
        {
            "ledger_id": ledger_id,
            "owner_ref": person_ref,
            "org_name": ledger.org_name,
            "qr_version": ledger.qr_version,
            "member_cap": ledger.member_cap,
            "owner_name": mask_name(cipher.decrypt_text(owner.name_enc)),
            "rules": rules_of(ledger),
            "owner_admin_id": owner.id,
            "owner_phone": mask_phone(cipher.decrypt_text(owner.phone_enc)),
        },
        ledger_id,
    )
    return True


def discard_pending_ledger(session: Session, ledger_id: str, challenge_id: str) -> bool:
    """Verification failed: the pending ledger and the applicant's data go, entirely."""
    ledger = session.get(Ledger, ledger_id, with_for_update=True)
    if ledger is None or ledger.status != "pending" or ledger.owner_challenge_id != challenge_id:
        return False
    session.execute(delete(Admin).where(Admin.ledger_id == ledger_id))
    session.execute(delete(LedgerKey).where(LedgerKey.ledger_id == ledger_id))
    session.delete(ledger)
    return True


def _valid_uuid(value) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise NotFound("No such ledger.") from None


def require_admin(session: Session, ledger_id: str, person_ref: str | None) -> tuple[Ledger, Admin]:
    """The ledger and the caller's admin row; NotFound / Forbidden otherwise."""
    ledger = session.get(Ledger, _valid_uuid(ledger_id))
    if ledger is None or ledger.status == "pending":
        raise NotFound("No such ledger.")
    admin = session.scalars(
        select(Admin).where(
            Admin.ledger_id == ledger.id, Admin.person_ref == person_ref, Admin.status == "active"
        )
    ).first()
    if admin is None:
        raise Forbidden("You are not an admin of this ledger.")
    return ledger, admin


def _admin_view(cipher, admin: Admin) -> dict:
    name = cipher.decrypt_text(admin.name_enc)
    return {
        "admin_id": admin.id,
        "role": admin.role,
        "status": admin.status,
        "name": mask_name(name),
        "id_type": admin.id_type,
        "id_number": mask_id_number(cipher.decrypt_text(admin.id_number_enc)),
        "phone": mask_phone(cipher.decrypt_text(admin.phone_enc)),
    }


def ledger_view(session: Session, crypto: Crypto, ledger: Ledger, role: str | None = None) -> dict:
    cipher = _ledger_cipher(session, crypto, ledger.id)
    admins = session.scalars(
        select(Admin).where(Admin.ledger_id == ledger.id).order_by(Admin.added_at)
    ).all()
    return {
        "ledger_id": ledger.id,
        "org_name": ledger.org_name,
        "org_address": ledger.org_address,
        "status": ledger.status,
        "created_at": ledger.created_at.isoformat() if ledger.created_at else None,
        "activated_at": ledger.activated_at.isoformat() if ledger.activated_at else None,
        "qr_version": ledger.qr_version,
        "member_cap": ledger.member_cap,
        "ends_on": ledger.ends_on.isoformat() if ledger.ends_on else None,
        "closed_at": ledger.closed_at.isoformat() if ledger.closed_at else None,
        "rules": rules_of(ledger),
        "rule_labels": rule_labels(rules_of(ledger)),
        "my_role": role,
        "admins": [_admin_view(cipher, a) for a in admins] if cipher else [],
    }


def get_ledger(session: Session, crypto: Crypto, ledger_id: str, person_ref: str) -> dict:
    ledger, admin = require_admin(session, ledger_id, person_ref)
    return ledger_view(session, crypto, ledger, admin.role)


def join_link(session: Session, qr_key: bytes, ledger_id: str, person_ref: str, expires_in_days=None) -> dict:
    """The ledger's current join link; optionally one that stops working after N days."""
    ledger, _ = require_admin(session, ledger_id, person_ref)
    LedgerClosed.if_closed(ledger)
    expires_at = 0
    if expires_in_days not in (None, ""):
        try:
            days = int(expires_in_days)
            if not 1 <= days <= 365:
                raise ValueError
        except (TypeError, ValueError):
            raise InvalidInput.from_fields({"expires_in_days": "must be a whole number of days from 1 to 365"}) from None
        expires_at = int(datetime.now(timezone.utc).timestamp()) + days * 86400
    return {
        "token": join_links.make_token(qr_key, ledger.id, ledger.qr_version, expires_at),
        "version": ledger.qr_version,
        "expires_at": datetime.fromtimestamp(expires_at, timezone.utc).isoformat() if expires_at else None,
    }


def rotate_join_link(session: Session, qr_key: bytes, ledger_id: str, person_ref: str) -> dict:
    ledger, _ = require_admin(session, ledger_id, person_ref)
    LedgerClosed.if_closed(ledger)
    ledger.qr_version += 1
    add_event(session, "org.qr_rotated", {"ledger_id": ledger.id, "qr_version": ledger.qr_version}, ledger.id)
    return {"token": join_links.make_token(qr_key, ledger.id, ledger.qr_version), "version": ledger.qr_version}


#: the most members an operator may allow one ledger
MAX_MEMBER_CAP = 1_000_000


def set_member_cap(session: Session, ledger_id: str, member_cap) -> dict:
    """An operator's decision: how many members an active ledger accepts (its admins
    asked for more, say). Lowering it below the members already there removes nobody;
    joins are refused until fewer remain. Member hears of it by ``org.member_cap_changed``."""
    if isinstance(member_cap, bool) or not isinstance(member_cap, int) or not 1 <= member_cap <= MAX_MEMBER_CAP:
        raise InvalidInput.from_fields({"member_cap": f"must be a whole number from 1 to {MAX_MEMBER_CAP:,}"})
    ledger = session.get(Ledger, _valid_uuid(ledger_id), with_for_update=True)
    if ledger is None:
        raise NotFound("No such ledger.")
    if ledger.status != "active":
        raise Conflict("Only an active ledger's member cap can change.", details={"reason": f"ledger_{ledger.status}"})
    was, ledger.member_cap = ledger.member_cap, member_cap
    add_event(session, "org.member_cap_changed", {
        "ledger_id": ledger.id, "member_cap": member_cap, "changed_at": datetime.now(timezone.utc).isoformat(),
    }, ledger.id)
    return {"ledger_id": ledger.id, "org_name": ledger.org_name, "member_cap": member_cap, "was": was}


def join_info(session: Session, crypto: Crypto, qr_key: bytes, token: str) -> dict:
    """What a person sees before joining: the org and its masked owner, or NotFound."""
    found = join_links.read_token(qr_key, token)
    ledger = session.get(Ledger, found[0]) if found else None
    if ledger is None or ledger.qr_version != found[1] or ledger.status not in ("active", "closed"):
        raise NotFound("This join link is not valid.")
    cipher = _ledger_cipher(session, crypto, ledger.id)
    owner = session.scalars(
        select(Admin).where(Admin.ledger_id == ledger.id, Admin.role == "owner")
    ).first()
    return {
        "ledger_id": ledger.id,
        "org_name": ledger.org_name,
        "org_address": ledger.org_address,
        "admin_name": mask_name(cipher.decrypt_text(owner.name_enc)) if cipher and owner else "",
        "status": ledger.status,
    }


def ledger_for_join(session: Session, qr_key: bytes, token: str) -> dict:
    """What member needs to accept joins, for a genuine current token (its projection
    may not have heard of a ledger activated a moment ago)."""
    found = join_links.read_token(qr_key, token)
    ledger = session.get(Ledger, found[0]) if found else None
    if ledger is None or ledger.qr_version != found[1] or ledger.status not in ("active", "closed"):
        raise NotFound("This join link is not valid.")
    return {"ledger_id": ledger.id, "org_name": ledger.org_name, "status": ledger.status,
            "qr_version": ledger.qr_version, "member_cap": ledger.member_cap}


def admins_of(session: Session, ledger_id: str) -> list[str]:
    """The people who administer (or administered, if it closed) this ledger."""
    return list(session.scalars(
        select(Admin.person_ref).distinct().where(Admin.ledger_id == ledger_id, Admin.status == "active")
    ))


def administering(session: Session, person_refs: list[str]) -> list[str]:
    """Which of these people administer an active ledger."""
    return list(session.scalars(
        select(Admin.person_ref).distinct().join(Ledger, Ledger.id == Admin.ledger_id).where(
            Admin.person_ref.in_(person_refs), Admin.status == "active", Ledger.status == "active"
        )
    ))


def my_ledgers(session: Session, person_ref: str) -> list[dict]:
    rows = session.execute(
        select(Ledger, Admin.role)
        .join(Admin, Admin.ledger_id == Ledger.id)
        .where(Admin.person_ref == person_ref, Admin.status == "active", Ledger.status != "pending")
        .order_by(Ledger.created_at.desc())
    ).all()
    return [
        {
            "ledger_id": ledger.id,
            "org_name": ledger.org_name,
            "status": ledger.status,
            "role": role,
            "created_at": ledger.created_at.isoformat() if ledger.created_at else None,
        }
        for ledger, role in rows
    ]


def require_owner(session: Session, ledger_id: str, person_ref: str) -> Ledger:
    ledger, admin = require_admin(session, ledger_id, person_ref)
    if admin.role != "owner":
        raise Forbidden("Only the ledger's owner can do this.")
    return ledger


def check_closable(session: Session, ledger_id: str, person_ref: str) -> Ledger:
    ledger = require_owner(session, ledger_id, person_ref)
    LedgerClosed.if_closed(ledger)
    return ledger


def await_close_confirmation(session: Session, ledger_id: str, challenge_id: str) -> None:
    ledger = session.get(Ledger, ledger_id, with_for_update=True)
    ledger.close_challenge_id = challenge_id


def close_ledger(session: Session, ledger_id: str, challenge_id: str, person_ref: str) -> bool:
    """The owner re-confirmed by SMS: the ledger closes."""
    ledger = session.get(Ledger, ledger_id, with_for_update=True)
    if ledger is None or ledger.status != "active" or ledger.close_challenge_id != challenge_id:
        return False
    owner = session.scalars(select(Admin).where(Admin.ledger_id == ledger_id, Admin.role == "owner")).first()
    if owner is None or owner.person_ref != person_ref:
        return False
    _close(session, ledger)
    return True


def close_ended_ledgers(session: Session) -> int:
    """Time-limited ledgers close themselves after their last day, the same way."""
    today = datetime.now(HEALTH_KIT_TZ).date()
    ended = session.scalars(
        select(Ledger).where(Ledger.status == "active", Ledger.ends_on < today).with_for_update(skip_locked=True)
    ).all()
    for ledger in ended:
        _close(session, ledger)
    return len(ended)


def _close(session: Session, ledger: Ledger) -> None:
    """Joins stop and the ledger's data key is destroyed, so the admins' stored personal
    data becomes unreadable; every service drops what it holds for the ledger on
    ``org.ledger_closed``."""
    ledger_id = ledger.id
    ledger.status = "closed"
    ledger.closed_at = datetime.now(timezone.utc)
    ledger.close_challenge_id = None
    ledger.transfer_challenge_id = None
    session.execute(delete(LedgerKey).where(LedgerKey.ledger_id == ledger_id))
    add_event(session, "org.ledger_closed", {"ledger_id": ledger_id}, ledger_id)


# -- rules ------------------------------------------------------------------------------


def rules_of(ledger: Ledger) -> dict:
    return {key: getattr(ledger, key) for key in DEFAULT_RULES}


def set_rules(session: Session, ledger_id: str, person_ref: str, body: dict) -> dict:
    """Only the owner sets the rules; healthsync re-evaluates the ledger from the event."""
    ledger = require_owner(session, ledger_id, person_ref)
    LedgerClosed.if_closed(ledger)
    rules = validate_rules({**rules_of(ledger), **(body if isinstance(body, dict) else {})})
    for key, value in rules.items():
        setattr(ledger, key, value)
    add_event(session, "org.rules_changed", {"ledger_id": ledger.id, "rules": rules}, ledger.id)
    return {"rules": rules, "rule_labels": rule_labels(rules)}


def get_rules(session: Session, ledger_id: str, person_ref: str) -> dict:
    ledger, _ = require_admin(session, ledger_id, person_ref)
    return {"rules": rules_of(ledger), "rule_labels": rule_labels(rules_of(ledger))}


# -- co-admins and ownership --------------------------------------------------------------

MAX_CO_ADMINS = 5


def list_admins(session: Session, crypto: Crypto, ledger_id: str, person_ref: str) -> dict:
    ledger, _ = require_admin(session, ledger_id, person_ref)
    LedgerClosed.if_closed(ledger)  # the admins' names and phones went with the data key
    cipher = _ledger_cipher(session, crypto, ledger.id)
    admins = session.scalars(select(Admin).where(Admin.ledger_id == ledger.id).order_by(Admin.added_at)).all()
    return {"items": [_admin_view(cipher, a) for a in admins] if cipher else []}


def invite_admin(session: Session, crypto: Crypto, ledger_id: str, person_ref: str, body: dict, client: str = "") -> dict:
    """The owner names a co-admin, who must pass the same verification (Health Kit
    match + SMS code to their own phone) before becoming admin."""
    ledger = require_owner(session, ledger_id, person_ref)
    LedgerClosed.if_closed(ledger)
    p = validate_person(body)
    invitee_ref = crypto.person_ref(p["id_type"], p["id_number"])
    admins = session.scalars(select(Admin).where(Admin.ledger_id == ledger.id).with_for_update()).all()
    existing = next((a for a in admins if a.person_ref == invitee_ref), None)
    if existing is not None and existing.status == "active":
        raise Conflict("This person is already an admin of this ledger.", details={"reason": "already_admin"})
    if existing is not None:
        session.delete(existing)  # an unfinished invitation: this one replaces it
        session.flush()
    elif sum(1 for a in admins if a.role == "co_admin") >= MAX_CO_ADMINS:
        raise Conflict(f"A ledger has at most {MAX_CO_ADMINS} co-admins.", details={"reason": "too_many_admins"})
    cipher = _ledger_cipher(session, crypto, ledger.id)
    admin_id, challenge_id = str(uuid.uuid4()), str(uuid.uuid4())
    session.add(
        Admin(
            id=admin_id, ledger_id=ledger.id, person_ref=invitee_ref, role="co_admin", status="pending",
            challenge_id=challenge_id, id_type=p["id_type"], phone_index=crypto.phone_index(p["phone"]),
            name_enc=cipher.encrypt_text(p["name"]), id_number_enc=cipher.encrypt_text(p["id_number"]),
            phone_enc=cipher.encrypt_text(p["phone"]),
        )
    )
    applicant = crypto.seal("verify", {k: p[k] for k in ("name", "id_type", "id_number", "phone")})
    add_event(
        session, "org.admin_invited",
        {"ledger_id": ledger.id, "admin_id": admin_id, "challenge_id": challenge_id, "applicant": applicant,
         "client": client},
        ledger.id,
    )
    return {"admin_id": admin_id, "challenge_id": challenge_id, "masked_phone": mask_phone(p["phone"]),
            "status": "pending"}


def activate_admin(session: Session, crypto: Crypto, admin_id: str, challenge_id: str, person_ref: str) -> bool:
    admin = session.get(Admin, admin_id, with_for_update=True)
    if admin is None or admin.status != "pending" or admin.challenge_id != challenge_id or admin.person_ref != person_ref:
        return False
    ledger = session.get(Ledger, admin.ledger_id)
    cipher = _ledger_cipher(session, crypto, admin.ledger_id)
    if ledger is None or ledger.status != "active" or cipher is None:
        return False
    admin.status = "active"
    admin.challenge_id = None
    add_event(session, "org.admin_added", _admin_added(cipher, admin), admin.ledger_id)
    return True


def _admin_added(cipher, admin: Admin) -> dict:
    """org.admin_added: the admin as the owner's admins list shows them (masked name and
    phone, role, id), so the access log can say which admin viewed."""
    return {
        "ledger_id": admin.ledger_id, "person_ref": admin.person_ref, "role": admin.role, "admin_id": admin.id,
        "masked_name": mask_name(cipher.decrypt_text(admin.name_enc)),
        "masked_phone": mask_phone(cipher.decrypt_text(admin.phone_enc)),
    }


def discard_pending_admin(session: Session, admin_id: str, challenge_id: str) -> bool:
    result = session.execute(
        delete(Admin).where(Admin.id == admin_id, Admin.status == "pending", Admin.challenge_id == challenge_id)
    )
    return result.rowcount > 0


def remove_admin(session: Session, ledger_id: str, person_ref: str, admin_id: str) -> dict:
    ledger = require_owner(session, ledger_id, person_ref)
    admin = session.get(Admin, _valid_uuid(admin_id), with_for_update=True)
    if admin is None or admin.ledger_id != ledger.id:
        raise NotFound("No such admin.")
    if admin.role == "owner":
        raise Conflict("The owner cannot be removed; hand ownership to a co-admin first.")
    was_active = admin.status == "active"
    session.delete(admin)
    if was_active:
        add_event(session, "org.admin_removed", {"ledger_id": ledger.id, "person_ref": admin.person_ref}, ledger.id)
    return {"admin_id": admin_id, "removed": True}


def check_transfer(session: Session, ledger_id: str, person_ref: str, admin_id) -> tuple[Ledger, Admin]:
    ledger = require_owner(session, ledger_id, person_ref)
    LedgerClosed.if_closed(ledger)
    if not admin_id:
        raise InvalidInput.from_fields({"admin_id": "name the co-admin who becomes owner"})
    target = session.get(Admin, _valid_uuid(admin_id))
    if target is None or target.ledger_id != ledger.id or target.role != "co_admin" or target.status != "active":
        raise NotFound("No such co-admin.")
    return ledger, target


def await_transfer_confirmation(session: Session, ledger_id: str, admin_id: str, challenge_id: str) -> None:
    ledger = session.get(Ledger, ledger_id, with_for_update=True)
    ledger.transfer_challenge_id = challenge_id
    ledger.transfer_to_admin_id = admin_id


def transfer_ownership(session: Session, crypto: Crypto, ledger_id: str, challenge_id: str, person_ref: str) -> bool:
    """The owner re-confirmed by SMS: the co-admin becomes owner, the owner co-admin."""
    ledger = session.get(Ledger, ledger_id, with_for_update=True)
    if ledger is None or ledger.status != "active" or ledger.transfer_challenge_id != challenge_id:
        return False
    owner = session.scalars(select(Admin).where(Admin.ledger_id == ledger_id, Admin.role == "owner")).first()
    target = session.get(Admin, ledger.transfer_to_admin_id)
    if owner is None or owner.person_ref != person_ref or target is None or target.status != "active":
        return False
    cipher = _ledger_cipher(session, crypto, ledger_id)
    owner.role, target.role = "co_admin", "owner"
    ledger.transfer_challenge_id = ledger.transfer_to_admin_id = None
    for admin in (owner, target):
        add_event(session, "org.admin_added", _admin_added(cipher, admin), ledger_id)
    return True
