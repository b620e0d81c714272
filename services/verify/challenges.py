"""Identity verification and SMS codes, as plain code over a session.

A challenge proves that a person holds the phone the Health Kit has on record for their
ID number: first the Health Kit must agree on name + ID + phone, then the person types
the 6-digit code sent to that phone. Rules (DESIGN.md, "Security rules"): codes from a
CSPRNG, stored only as an HMAC, valid ``CODE_TTL_SECONDS``, single use, at most
``CODE_MAX_ATTEMPTS`` wrong tries per challenge (a resend does not reset them), resend
cooldown, daily caps per phone and per client address.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta, timezone
from typing import NoReturn

from sqlalchemy import Row, bindparam, delete, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from services.verify.models import Challenge, Identity, SmsSend, UserSession
from shared.config import Settings
from shared.crypto import Crypto
from shared.db import compiled_once
from shared.errors import (
    CodeExpired,
    Conflict,
    IdentityRejected,
    NotFound,
    RateLimited,
    TooManyAttempts,
    Unauthenticated,
    WrongCode,
)
from shared.events import JOIN_ANSWERS
from shared.healthkit import HealthKit, HealthKitUnavailable, IdentityMatch
from shared.masking import mask_phone
from shared.outbox import add_event
from shared.sms import SmsSender
from shared.validation import validate_code, validate_fields, validate_phone

PURPOSE_LABELS = {
    "ledger_registration": "创建团体簿",
    "admin_invite": "成为团体簿管理员",
    "join": "加入团体簿",
    "login": "登录",
    "reconfirm": "确认操作",
}

REJECTIONS = {
    IdentityMatch.PHONE_MISMATCH: (
        "phone_mismatch",
        "This phone number is not the one registered with the Health Kit for this ID number.",
    ),
    IdentityMatch.NAME_MISMATCH: (
        "name_mismatch",
        "The name does not match the Health Kit record for this ID number.",
    ),
    IdentityMatch.NOT_FOUND: ("not_found", "The Health Kit has no record of this ID number."),
    "health_kit_unavailable": (
        "health_kit_unavailable",
        "The Health Kit could not be reached to check your details; please try again later.",
    ),
    "rate_limited": ("rate_limited", "Too many codes were sent to this phone today; try again tomorrow."),
    "address_rate_limited": (
        "address_rate_limited",
        "Too many codes nobody confirmed were requested from this network today; try again tomorrow or from another network.",
    ),
    "too_many_attempts": ("too_many_attempts", "Too many wrong codes; please start again."),
    "expired": ("expired", "The code expired before it was confirmed; please start again."),
    # after IDENTITY_MISMATCHES_PER_DAY such answers for one ID number (or
    # IDENTITY_MISMATCHES_PER_CLIENT from one client address), rejections stop saying which field is wrong: the
    # specific answers would otherwise let anyone holding a QR code try names against an
    # ID number (name_mismatch turns into phone_mismatch at the right one), or learn
    # whether the Health Kit knows a number
    "identity_mismatch": (
        "identity_mismatch",
        "The name, ID number and phone do not all match the Health Kit's record; please check them.",
    ),
    "already_member": ("already_member", "You are already a member of this ledger."),
    "join_in_progress": (
        "join_in_progress",
        "A join for this person is already waiting for its SMS code: finish it, or try again in a few minutes.",
    ),
    "superseded": (
        "superseded",
        "You sent the form again, so this code no longer counts: use the code from your latest request.",
    ),
}


CHALLENGES, SENDS = Challenge.__table__, SmsSend.__table__


def _sends_since(cap: str, *where):
    """How many codes went out since ``:since`` under ``where``, counted no further
    than the cap (``:<cap>``), so it costs no more however many an address asked for."""
    capped = select(SENDS.c.id).where(SENDS.c.sent_at > bindparam("since"), *where).limit(bindparam(cap)).subquery()
    return select(func.count()).select_from(capped).scalar_subquery()


# Statements of the join path, built once over the tables (an ORM statement built per
# call costs several times the CPU of running it): whether a challenge exists, both
# daily caps (the client's only for a request that came with an address), one send.
CHALLENGE_EXISTS = select(CHALLENGES.c.id).where(CHALLENGES.c.id == bindparam("id"))
_to_phone = _sends_since("phone_cap", SENDS.c.phone_index == bindparam("phone_index"))
SENT_TODAY = {
    # a client address's cap counts only codes not confirmed (see SmsSend)
    True: select(_to_phone, _sends_since("client_cap", SENDS.c.client == bindparam("client"), ~SENDS.c.confirmed)),
    False: select(_to_phone, literal(0)),
}
# the answers that name the field at fault, and how many of them one ID number (or one
# client address) had over the last day, counted no further than the cap
NAMED_MISMATCHES = ("name_mismatch", "phone_mismatch", "not_found")


def _mismatches_since(cap: str, *where):
    capped = select(CHALLENGES.c.id).where(
        CHALLENGES.c.status == "rejected", CHALLENGES.c.reason.in_(NAMED_MISMATCHES + ("identity_mismatch",)),
        CHALLENGES.c.created_at > bindparam("since"), *where,
    ).limit(bindparam(cap)).subquery()
    return select(func.count()).select_from(capped).scalar_subquery()


MISMATCHES_TODAY = select(
    _mismatches_since("person_cap", CHALLENGES.c.person_ref == bindparam("person_ref")),
    _mismatches_since("client_cap", CHALLENGES.c.client == bindparam("client"), CHALLENGES.c.client != ""),
)
CHALLENGE_FOR_UPDATE = select(CHALLENGES).where(CHALLENGES.c.id == bindparam("id")).with_for_update()
FINISH = (  # a challenge ends: its code and phone go (a column's own name would mean "set it")
    update(CHALLENGES)
    .where(CHALLENGES.c.id == bindparam("challenge"))
    .values(status=bindparam("to"), reason=None, code_digest=None, phone_enc=None, finished_at=bindparam("at"))
)
# the right code: the challenge ends as verified, and its codes (found by the phone's
# sends of the last day) stop counting against the address they were asked from; one
# statement, the mark riding along as a CTE
VERIFIED = FINISH.add_cte(
    update(SENDS)
    .where(
        SENDS.c.phone_index == bindparam("phone"),
        SENDS.c.sent_at > bindparam("since"),
        SENDS.c.challenge_id == bindparam("challenge"),
    )
    .values(confirmed=True)
    .cte("confirmed_sends")
)
OPEN_SESSION = insert(UserSession.__table__).inline()
RECORD_SEND = insert(SENDS).inline()

_identity = pg_insert(Identity)
REMEMBER_IDENTITY = compiled_once(  # one upsert: the phone a person verified last
    _identity.values(
        person_ref=bindparam("person_ref"), phone_index=bindparam("phone_index"),
        phone_enc=bindparam("phone_enc"), updated_at=bindparam("updated_at"),
    ).on_conflict_do_update(
        index_elements=[Identity.person_ref],
        set_={c: _identity.excluded[c] for c in ("phone_index", "phone_enc", "updated_at")},
    )
)


def now() -> datetime:
    return datetime.now(timezone.utc)


def _challenge_id(value) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise NotFound("No such challenge.") from None


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Challenges:
    """The verify service's domain verbs, given its collaborators."""

    def __init__(self, session: Session, crypto: Crypto, health_kit: HealthKit, sms: SmsSender, cfg: Settings):
        self.session = session
        self.crypto = crypto
        self.health_kit = health_kit
        self.sms = sms
        self.cfg = cfg

    # -- starting ---------------------------------------------------------------

    def start_identity(
        self, challenge_id: str, purpose: str, subject_id: str, applicant: dict, client: str = "",
        failed_attempts: int = 0, answer: str | None = None,
    ) -> Challenge:
        """Check name + ID + phone with the Health Kit; on a match, send a code.
        ``failed_attempts``: carried over from a request this one replaced.
        ``answer``: on a match, answer that instead (already_member, join_in_progress;
        no code)."""
        if self.session.execute(CHALLENGE_EXISTS, {"id": challenge_id}).first() is not None:
            return self.session.get(Challenge, challenge_id)
        phone = applicant["phone"]
        person_ref = self.crypto.person_ref(applicant["id_type"], applicant["id_number"])
        challenge = self._new(challenge_id, purpose, subject_id, person_ref, phone, client)
        challenge.failed_attempts = failed_attempts
        try:
            match = self.health_kit.match_identity(
                applicant["name"], applicant["id_type"], applicant["id_number"], phone
            )
        except HealthKitUnavailable:
            match = "health_kit_unavailable"
        if match != IdentityMatch.MATCH:
            if match in NAMED_MISMATCHES and self._many_mismatches(person_ref, challenge.client):
                match = "identity_mismatch"
            return self._reject(challenge, match)
        if answer in JOIN_ANSWERS:
            return self._reject(challenge, answer)
        try:
            self._send_code(challenge, phone)
        except RateLimited as limited:  # the phone's cap, or the client address's
            return self._reject(challenge, "rate_limited" if limited.field == "phone" else "address_rate_limited")
        self._announce_sent(challenge)
        return challenge

    def _many_mismatches(self, person_ref: str, client: str) -> bool:
        """Has this ID number, or this client address, had the Health Kit disagree too
        often over the last day? (Counted only once it disagrees again: a join that
        matches costs nothing more.)"""
        person_cap, client_cap = self.cfg.identity_mismatches_per_day, self.cfg.identity_mismatches_per_client
        by_person, by_client = self.session.execute(MISMATCHES_TODAY, {
            "person_ref": person_ref, "client": client, "since": now() - timedelta(days=1),
            "person_cap": person_cap, "client_cap": client_cap,
        }).one()
        return by_person >= person_cap or by_client >= client_cap

    def _new(self, challenge_id: str, purpose: str, subject_id, person_ref, phone: str, client: str) -> Challenge:
        """A challenge for this phone; the phone is kept encrypted only while a code may
        still be resent."""
        challenge = Challenge(
            id=challenge_id,
            purpose=purpose,
            subject_id=subject_id,
            person_ref=person_ref,
            phone_index=self.crypto.phone_index(phone),
            phone_enc=self.crypto.master.encrypt_text(phone, aad=challenge_id.encode()),
            masked_phone=mask_phone(phone),
            status="pending",
            failed_attempts=0,
            sends=0,
            client=client or "",
        )
        self.session.add(challenge)
        return challenge

    def start_login(self, phone: str, client: str = "") -> dict:
        """Send a login code to a phone that has passed verification before.

        An unknown phone gets the same answer and no SMS, so the endpoint does not tell
        whether a number belongs to anyone."""
        phone = validate_fields({"phone": phone}, {"phone": validate_phone})["phone"]
        phone_index = self.crypto.phone_index(phone)
        identity = self.session.scalars(
            select(Identity).where(Identity.phone_index == phone_index).order_by(Identity.updated_at.desc())
        ).first()
        person_ref = identity.person_ref if identity else None
        challenge = self._new(str(uuid.uuid4()), "login", None, person_ref, phone, client)
        self._send_code(challenge, phone, deliver=identity is not None)
        return self.describe(challenge)

    def start_reconfirm(self, person_ref: str, subject_id: str, client: str = "", act: str = "") -> dict:
        """Re-verify someone already known (before a destructive act): a code to the
        phone they verified with, whose SMS names ``act``."""
        identity = self.session.get(Identity, person_ref)
        if identity is None:
            raise Conflict("No verified phone is on record for you; log in again.")
        phone = self.crypto.master.decrypt_text(identity.phone_enc, aad=person_ref.encode())
        challenge = self._new(str(uuid.uuid4()), "reconfirm", subject_id, person_ref, phone, client)
        challenge.act = act[:100] or None
        self._send_code(challenge, phone)
        self._announce_sent(challenge)
        return self.describe(challenge)

    def send_notice(self, person_ref: str, template: str, params: dict) -> dict:
        identity = self.session.get(Identity, person_ref)
        if identity is None:
            raise NotFound("No verified phone is on record for this person.")
        phone = self.crypto.master.decrypt_text(identity.phone_enc, aad=person_ref.encode())
        self.sms.send(phone, template, params)
        return {"sent": True}

    def expire_unconfirmed(self, batch: int = 500) -> int:
        """Challenges whose code expired (plus a grace period) without being confirmed
        end as ``expired``; ``identity_rejected`` tells the owner of the pending thing to
        drop it and its personal data. Safe on several instances (SKIP LOCKED)."""
        cutoff = now() - timedelta(seconds=self.cfg.challenge_grace_seconds)
        stale = self.session.scalars(
            select(Challenge)
            .where(Challenge.status == "code_sent", Challenge.code_expires_at < cutoff)
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).all()
        for challenge in stale:
            self._reject(challenge, "expired")
        return len(stale)

    def forget_identities(self, person_refs: list[str], unused_since: datetime) -> int:
        """The phones of people who no longer belong anywhere go (they left their last
        ledger, or it closed). A verification after ``unused_since`` (a join under way
        elsewhere) keeps one."""
        if not person_refs:
            return 0
        return self.session.execute(
            delete(Identity).where(Identity.person_ref.in_(person_refs), Identity.updated_at <= unused_since)
        ).rowcount

    def forget_old(self, keep_days: int) -> dict:
        """What verify need not keep: SMS send records past the 24 h cap window, ended
        sessions, and challenges finished more than ``keep_days`` days ago (with their
        masked phone and client address)."""
        t = now()
        sends = self.session.execute(delete(SmsSend).where(SmsSend.sent_at < t - timedelta(days=1))).rowcount
        sessions = self.session.execute(
            delete(UserSession).where(
                (UserSession.revoked_at.is_not(None))
                | (UserSession.last_seen_at < t - timedelta(seconds=self.cfg.session_idle_seconds))
                | (UserSession.created_at < t - timedelta(seconds=self.cfg.session_absolute_seconds))
            )
        ).rowcount
        challenges = self.session.execute(
            delete(Challenge).where(
                Challenge.status.not_in(("pending", "code_sent")),
                func.coalesce(Challenge.finished_at, Challenge.created_at) < t - timedelta(days=keep_days),
            )
        ).rowcount
        return {"sms_sends": sends, "sessions": sessions, "challenges": challenges}

    # -- codes --------------------------------------------------------------------

    def _check_caps(self, phone_index: str, client: str) -> None:
        """Both daily caps in one statement (``SENT_TODAY``)."""
        phone_cap, client_cap = self.cfg.sms_daily_cap_per_phone, self.cfg.sms_daily_cap_per_client
        params = {"since": now() - timedelta(days=1), "phone_index": phone_index, "phone_cap": phone_cap}
        if client:
            params.update(client=client, client_cap=client_cap)
        # a Core statement: it does not flush the pending new challenge (that is flushed
        # once, complete, in _send_code)
        sent_to_phone, sent_from_client = self.session.execute(SENT_TODAY[bool(client)], params).one()
        if sent_to_phone >= phone_cap:
            raise RateLimited(REJECTIONS["rate_limited"][1], field="phone")
        if sent_from_client >= client_cap:
            raise RateLimited(REJECTIONS["address_rate_limited"][1])

    def _send_code(self, challenge: Challenge, phone: str, deliver: bool = True) -> None:
        self._check_caps(challenge.phone_index, challenge.client)
        code = f"{secrets.randbelow(10**6):06d}"
        sent_at = now()
        challenge.status = "code_sent"
        challenge.code_digest = self.crypto.code_digest(challenge.id, code) if deliver else None
        challenge.code_sent_at = sent_at
        challenge.code_expires_at = sent_at + timedelta(seconds=self.cfg.code_ttl_seconds)
        challenge.sends = (challenge.sends or 0) + 1
        self.session.flush()
        self.session.execute(RECORD_SEND, {
            "phone_index": challenge.phone_index, "client": challenge.client, "sent_at": sent_at,
            "challenge_id": challenge.id,
        })
        if deliver:
            self.sms.send(
                phone,
                "verification_code",
                {
                    "code": code,
                    "minutes": str(self.cfg.code_ttl_seconds // 60),
                    "purpose": challenge.act or PURPOSE_LABELS.get(challenge.purpose, ""),
                },
            )

    def _announce_sent(self, challenge: Challenge) -> None:
        add_event(
            self.session,
            "verify.challenge_sent",
            {
                "challenge_id": challenge.id,
                "purpose": challenge.purpose,
                "subject_id": challenge.subject_id,
                "masked_phone": challenge.masked_phone,
                "expires_at": challenge.code_expires_at.isoformat(),
            },
            challenge.id,
        )

    def _finish(self, challenge: Challenge, status: str, reason: str | None = None) -> None:
        challenge.status = status
        challenge.reason = reason
        challenge.code_digest = None
        challenge.phone_enc = None
        challenge.finished_at = now()

    def supersede(self, challenge_id: str) -> int:
        """The same person asked again for the same membership (a reload, a second tab):
        the earlier code no longer counts. Its membership is gone already, so nobody
        needs telling by event; a page still showing it learns at its next poll or try.

        Returns its wrong tries, which the new challenge carries on: sending the form
        again must not reset them, as a new code does not."""
        challenge = self.session.get(Challenge, challenge_id, with_for_update=True)
        if challenge is None:
            # Its request is not handled yet, or is being handled by another worker (the
            # two requests are different aggregates, so their events may cross): a row
            # that says it ended, which that handling finds and leaves alone (or, having
            # inserted first, waits on and then sees superseded below).
            self.session.execute(
                pg_insert(CHALLENGES).values(
                    id=challenge_id, purpose="join", phone_index="", masked_phone="", status="rejected",
                    reason="superseded", failed_attempts=0, sends=0, client="", finished_at=now(),
                ).on_conflict_do_nothing()
            )
            challenge = self.session.get(Challenge, challenge_id, with_for_update=True)
        if challenge.status not in ("pending", "code_sent"):
            return 0
        self._finish(challenge, "rejected", "superseded")
        return challenge.failed_attempts or 0

    def _reject(self, challenge: Challenge, why) -> Challenge:
        reason, message = REJECTIONS[why]
        status = {"too_many_attempts": "failed", "expired": "expired"}.get(why, "rejected")
        self._finish(challenge, status, reason)
        add_event(
            self.session,
            "verify.identity_rejected",
            {
                "challenge_id": challenge.id,
                "purpose": challenge.purpose,
                "subject_id": challenge.subject_id,
                "reason": reason,
                "message": message,
            },
            challenge.id,
        )
        return challenge

    def _get_for_update(self, challenge_id) -> Challenge:
        challenge = self.session.get(Challenge, _challenge_id(challenge_id), with_for_update=True)
        if challenge is None:
            raise NotFound("No such challenge.")
        return challenge

    def _refuse_finished(self, challenge: Challenge | Row) -> None:
        if challenge.status == "rejected":
            message = dict(REJECTIONS.values()).get(challenge.reason, IdentityRejected.default_message)
            raise IdentityRejected(message, details={"reason": challenge.reason})
        if challenge.status == "verified":
            raise Conflict("This code has already been used.", field="code")
        if challenge.status == "failed":
            raise TooManyAttempts(field="code")
        if challenge.status == "expired":
            raise CodeExpired("The code expired; please start again.", field="code")
        if challenge.status != "code_sent":
            raise Conflict("The code has not been sent yet; wait a moment.")

    def confirm(self, challenge_id: str, code: str) -> dict:
        """Check a code. A wrong code is counted (committed) before WrongCode is raised.

        The right code, the common case, costs three statements on the tables: the
        challenge locked, ended, and the person's session opened."""
        code = validate_fields({"code": code}, {"code": validate_code})["code"]
        challenge = self.session.execute(CHALLENGE_FOR_UPDATE, {"id": _challenge_id(challenge_id)}).first()
        if challenge is None:
            raise NotFound("No such challenge.")
        self._refuse_finished(challenge)
        if now() > challenge.code_expires_at:
            raise CodeExpired(field="code")
        expected = challenge.code_digest
        if expected is None or not hmac.compare_digest(expected, self.crypto.code_digest(challenge.id, code)):
            self._count_wrong_code(challenge.id)
        person_ref = challenge.person_ref
        self._remember_identity(challenge)
        verified_at = now()
        self.session.execute(VERIFIED, {
            "challenge": challenge.id, "to": "verified", "at": verified_at,
            "phone": challenge.phone_index, "since": verified_at - timedelta(days=1),
        })
        add_event(
            self.session,
            "verify.identity_verified",
            {
                "challenge_id": challenge.id,
                "purpose": challenge.purpose,
                "subject_id": challenge.subject_id,
                "person_ref": person_ref,
            },
            challenge.id,
        )
        token = self.open_session(person_ref)
        return {
            "challenge_id": challenge.id,
            "purpose": challenge.purpose,
            "subject_id": challenge.subject_id,
            "person_ref": person_ref,
            "token": token,
        }

    def _count_wrong_code(self, challenge_id: str) -> NoReturn:
        """One more wrong try (committed); the last one allowed ends the challenge. The
        row is locked by this transaction already."""
        challenge = self.session.get(Challenge, challenge_id)
        challenge.failed_attempts += 1
        left = self.cfg.code_max_attempts - challenge.failed_attempts
        if left <= 0:
            self._reject(challenge, "too_many_attempts")
            self.session.commit()
            raise TooManyAttempts(field="code")
        self.session.commit()
        raise WrongCode(field="code", details={"attempts_left": left})

    def _remember_identity(self, challenge: Challenge | Row) -> None:
        """The phone this person verified, for logins and notices (one upsert)."""
        phone = self.crypto.master.decrypt_text(challenge.phone_enc, aad=challenge.id.encode())
        self.session.execute(REMEMBER_IDENTITY, {
            "person_ref": challenge.person_ref,
            "phone_index": challenge.phone_index,
            "phone_enc": self.crypto.master.encrypt_text(phone, aad=challenge.person_ref.encode()),
            "updated_at": now(),
        })

    def resend(self, challenge_id: str) -> dict:
        challenge = self._get_for_update(challenge_id)
        self._refuse_finished(challenge)
        wait = self.cfg.resend_cooldown_seconds - (now() - challenge.code_sent_at).total_seconds()
        if wait > 0:
            raise RateLimited(
                f"Wait {int(wait) + 1} seconds before asking for a new code.",
                details={"retry_after": int(wait) + 1},
            )
        phone = self.crypto.master.decrypt_text(challenge.phone_enc, aad=challenge.id.encode())
        self._send_code(challenge, phone, deliver=challenge.person_ref is not None)
        return self.describe(challenge)

    def describe(self, challenge: Challenge) -> dict:
        message = None
        if challenge.reason:
            message = dict(REJECTIONS.values()).get(challenge.reason)
        resend_after = 0
        if challenge.status == "code_sent" and challenge.code_sent_at:
            resend_after = max(0, int(self.cfg.resend_cooldown_seconds - (now() - challenge.code_sent_at).total_seconds()))
        return {
            "challenge_id": challenge.id,
            "purpose": challenge.purpose,
            "subject_id": challenge.subject_id,
            "status": challenge.status,
            "masked_phone": challenge.masked_phone,
            "reason": challenge.reason,
            "message": message,
            "attempts_left": max(0, self.cfg.code_max_attempts - (challenge.failed_attempts or 0)),
            "expires_at": challenge.code_expires_at.isoformat() if challenge.code_expires_at else None,
            "resend_after": resend_after,
        }

    def get(self, challenge_id: str) -> dict:
        challenge = self.session.get(Challenge, _challenge_id(challenge_id))
        if challenge is None:
            raise NotFound("No such challenge.")
        return self.describe(challenge)

    # -- sessions -------------------------------------------------------------------

    def open_session(self, person_ref: str) -> str:
        token = secrets.token_urlsafe(32)
        t = now()
        self.session.execute(OPEN_SESSION, {
            "token_hash": _hash_token(token), "person_ref": person_ref, "created_at": t, "last_seen_at": t,
        })
        return token

    def check_session(self, token: str | None) -> dict:
        if not token or not isinstance(token, str) or len(token) > 200:
            raise Unauthenticated()
        record = self.session.get(UserSession, _hash_token(token))
        t = now()
        if (
            record is None
            or record.revoked_at is not None
            or t - record.last_seen_at > timedelta(seconds=self.cfg.session_idle_seconds)
            or t - record.created_at > timedelta(seconds=self.cfg.session_absolute_seconds)
        ):
            raise Unauthenticated("Your session has ended; please log in again.")
        if (t - record.last_seen_at).total_seconds() > 30:
            record.last_seen_at = t
        return {"person_ref": record.person_ref}

    def revoke_session(self, token: str | None) -> None:
        record = self.session.get(UserSession, _hash_token(token or ""))
        if record is not None and record.revoked_at is None:
            record.revoked_at = now()
