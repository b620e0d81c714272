"""The verification rules as plain code: verify's Challenges on the real PostgreSQL,
with fakes at the boundary for the two external systems (Health Kit, SMS)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

import services.org.models  # noqa: F401 - registers every outbox table
from services.verify.challenges import Challenges
from services.verify.models import Challenge, Identity, SmsSend
from shared.config import load_settings
from shared.crypto import Crypto
from shared.errors import CodeExpired, Conflict, RateLimited, TooManyAttempts, WrongCode
from shared.healthkit import HealthKitUnavailable, IdentityMatch
from tests.integration.support import migrated_engine
from tests.people import person

CFG = load_settings({"SMS_DAILY_CAP_PER_PHONE": "3"})


class FakeHealthKit:
    """Knows some people; can be told to be unreachable."""

    def __init__(self) -> None:
        self.people: dict[str, tuple[str, str]] = {}
        self.down = False

    def match_identity(self, name, id_type, id_number, phone):
        if self.down:
            raise HealthKitUnavailable()
        if id_number not in self.people:
            return IdentityMatch.NOT_FOUND
        known_name, known_phone = self.people[id_number]
        if known_phone != phone:
            return IdentityMatch.PHONE_MISMATCH
        return IdentityMatch.MATCH if known_name == name else IdentityMatch.NAME_MISMATCH


class FakeSms:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict]] = []

    def send(self, phone, template, params):
        self.sent.append((phone, template, dict(params)))

    def last_code(self) -> str:
        return self.sent[-1][2]["code"]


@pytest.fixture(scope="module")
def engine():
    with migrated_engine() as engine:
        yield engine


@pytest.fixture
def world(engine):
    kit, sms = FakeHealthKit(), FakeSms()
    with Session(engine) as session:
        yield Challenges(session, Crypto(CFG), kit, sms, CFG), kit, sms, session


def applicant(kit, **overrides):
    p = person("钟测")
    kit.people[p.id_number] = (p.name, p.phone)
    data = {"name": p.name, "id_type": "resident_id", "id_number": p.id_number, "phone": p.phone}
    data.update(overrides)
    return data


def start(challenges, kit, **overrides):
    challenge_id = str(uuid.uuid4())
    challenges.start_identity(challenge_id, "join", str(uuid.uuid4()), applicant(kit, **overrides))
    challenges.session.commit()
    return challenge_id


def test_a_match_sends_a_six_digit_code_stored_only_as_a_digest(world):
    challenges, kit, sms, session = world
    challenge_id = start(challenges, kit)
    code = sms.last_code()
    assert len(code) == 6 and code.isdigit()
    stored = session.get(Challenge, challenge_id)
    assert stored.status == "code_sent" and code not in stored.code_digest
    assert stored.code_expires_at - stored.code_sent_at == timedelta(seconds=CFG.code_ttl_seconds)
    result = challenges.confirm(challenge_id, code)
    session.commit()
    assert result["token"] and session.get(Challenge, challenge_id).phone_enc is None  # phone gone once done
    with pytest.raises(Conflict):  # single use
        challenges.confirm(challenge_id, code)


@pytest.mark.parametrize("mismatch", [{"phone": "13900000001"}, {"name": "别人"}])
def test_a_mismatch_is_rejected_without_sms(world, mismatch):
    challenges, kit, sms, session = world
    challenge_id = start(challenges, kit, **mismatch)
    assert sms.sent == []
    assert session.get(Challenge, challenge_id).status == "rejected"


def test_after_a_few_mismatches_rejections_stop_naming_the_field(world):
    # someone holding a QR code must not find a person's name by trying names against
    # their ID number (name_mismatch turning into phone_mismatch at the right one)
    _, kit, sms, session = world
    cfg = load_settings({"IDENTITY_MISMATCHES_PER_DAY": "3", "IDENTITY_MISMATCHES_PER_CLIENT": "30"})
    challenges = Challenges(session, Crypto(cfg), kit, sms, cfg)
    target = applicant(kit)
    client = f"203.0.113.{uuid.uuid4().int % 250}:1"

    def attempt(name: str, phone: str = target["phone"], by: str = client) -> str:
        challenge_id = str(uuid.uuid4())
        challenges.start_identity(challenge_id, "join", str(uuid.uuid4()), {**target, "name": name, "phone": phone}, by)
        session.commit()
        return session.get(Challenge, challenge_id).reason

    assert [attempt(guess) for guess in ("王一", "王二", "王三")] == ["name_mismatch"] * 3
    # the fourth, with the right name and another phone, no longer says "the phone"
    assert attempt(target["name"], "13900000001") == "identity_mismatch"
    # from another address too: it is the ID number that was tried too often
    assert attempt("王四", by="198.51.100.9:1") == "identity_mismatch"
    # the person themself, with the right details, still gets a code
    assert attempt(target["name"], target["phone"]) is None and sms.last_code()
    # one address trying many ID numbers: after its own cap, answers are general there
    for _ in range(30 - 4):
        other = applicant(kit)
        challenges.start_identity(str(uuid.uuid4()), "join", str(uuid.uuid4()),
                                  {**other, "name": "某某"}, client)
        session.commit()
    assert attempt("某某", by=client) == "identity_mismatch"
    fresh = applicant(kit)
    elsewhere = str(uuid.uuid4())
    challenges.start_identity(elsewhere, "join", str(uuid.uuid4()), {**fresh, "name": "某某"}, "192.0.2.1:1")
    session.commit()
    assert session.get(Challenge, elsewhere).reason == "name_mismatch"


def test_a_request_superseded_before_it_was_handled_sends_no_code(world):
    # the two requests of a resent form are different aggregates: the newer one's
    # event may be handled first
    challenges, kit, sms, session = world
    earlier = str(uuid.uuid4())
    assert challenges.supersede(earlier) == 0
    session.commit()
    challenges.start_identity(earlier, "join", str(uuid.uuid4()), applicant(kit))
    session.commit()
    assert sms.sent == []
    ended = session.get(Challenge, earlier)
    assert (ended.status, ended.reason) == ("rejected", "superseded")


def test_superseding_a_code_hands_its_wrong_tries_on(world):
    challenges, kit, sms, session = world
    earlier = start(challenges, kit)
    with pytest.raises(WrongCode):
        challenges.confirm(earlier, "000000" if sms.last_code() != "000000" else "111111")
    assert challenges.supersede(earlier) == 1
    session.commit()
    assert session.get(Challenge, earlier).reason == "superseded"


def test_an_unreachable_health_kit_rejects_visibly(world):
    challenges, kit, sms, session = world
    kit.down = True
    challenge_id = start(challenges, kit)
    assert session.get(Challenge, challenge_id).reason == "health_kit_unavailable" and sms.sent == []


def test_five_wrong_codes_and_a_resend_does_not_reset_them(world):
    challenges, kit, sms, session = world
    challenge_id = start(challenges, kit)
    right = sms.last_code()
    wrong = "000000" if right != "000000" else "111111"
    for left in (4, 3):
        with pytest.raises(WrongCode) as err:
            challenges.confirm(challenge_id, wrong)
        assert err.value.details["attempts_left"] == left
    session.execute(update(Challenge).where(Challenge.id == challenge_id)
                    .values(code_sent_at=Challenge.code_sent_at - timedelta(seconds=61)))
    challenges.resend(challenge_id)
    session.commit()
    for _ in range(2):
        with pytest.raises(WrongCode):
            challenges.confirm(challenge_id, wrong)
    with pytest.raises(TooManyAttempts):
        challenges.confirm(challenge_id, wrong)
    with pytest.raises(TooManyAttempts):
        challenges.confirm(challenge_id, sms.last_code())


def test_resend_waits_for_the_cooldown(world):
    challenges, kit, sms, session = world
    challenge_id = start(challenges, kit)
    with pytest.raises(RateLimited) as err:
        challenges.resend(challenge_id)
    assert 0 < err.value.details["retry_after"] <= 60


def test_an_expired_code_is_refused_and_swept(world):
    challenges, kit, sms, session = world
    challenge_id = start(challenges, kit)
    session.execute(update(Challenge).where(Challenge.id == challenge_id)
                    .values(code_expires_at=Challenge.code_sent_at - timedelta(minutes=10)))
    with pytest.raises(CodeExpired):
        challenges.confirm(challenge_id, sms.last_code())
    assert challenges.expire_unconfirmed() >= 1
    session.commit()
    assert session.get(Challenge, challenge_id).status == "expired"


def test_the_daily_cap_per_phone(world):
    challenges, kit, sms, session = world
    data = applicant(kit)
    for _ in range(3):
        challenges.start_identity(str(uuid.uuid4()), "join", str(uuid.uuid4()), data)
    session.commit()
    fourth = str(uuid.uuid4())
    challenges.start_identity(fourth, "join", str(uuid.uuid4()), data)
    session.commit()
    assert session.get(Challenge, fourth).reason == "rate_limited"
    assert len(sms.sent) == 3
    assert session.query(SmsSend).filter(SmsSend.phone_index == Crypto(CFG).phone_index(data["phone"])).count() == 3


def test_the_daily_cap_per_client_address(world):
    _, kit, sms, session = world
    cfg = load_settings({"SMS_DAILY_CAP_PER_PHONE": "3", "SMS_DAILY_CAP_PER_CLIENT": "4"})
    challenges = Challenges(session, Crypto(cfg), kit, sms, cfg)
    client, other = f"203.0.113.{uuid.uuid4().int % 250}:{uuid.uuid4().int % 60000}", "198.51.100.7:1"
    ids = [str(uuid.uuid4()) for _ in range(6)]
    for challenge_id in ids:  # different people, one address
        challenges.start_identity(challenge_id, "join", str(uuid.uuid4()), applicant(kit), client)
        session.commit()
    reasons = [session.get(Challenge, challenge_id).reason for challenge_id in ids]
    assert reasons == [None] * 4 + ["address_rate_limited"] * 2  # not "this phone", which would mislead
    elsewhere = str(uuid.uuid4())
    challenges.start_identity(elsewhere, "join", str(uuid.uuid4()), applicant(kit), other)
    session.commit()
    assert session.get(Challenge, elsewhere).status == "code_sent"


def test_confirmed_codes_do_not_count_against_the_client_address(world):
    # a staff meeting on one office network: everyone joins from one address, and each
    # confirms their own code; codes nobody confirms are still capped
    _, kit, sms, session = world
    cfg = load_settings({"SMS_DAILY_CAP_PER_PHONE": "3", "SMS_DAILY_CAP_PER_CLIENT": "4"})
    challenges = Challenges(session, Crypto(cfg), kit, sms, cfg)
    office = f"203.0.113.{uuid.uuid4().int % 250}:{uuid.uuid4().int % 60000}"
    for _ in range(6):  # more than the cap, each confirmed
        challenge_id = str(uuid.uuid4())
        challenges.start_identity(challenge_id, "join", str(uuid.uuid4()), applicant(kit), office)
        session.commit()
        assert session.get(Challenge, challenge_id).status == "code_sent"
        challenges.confirm(challenge_id, sms.last_code())
        session.commit()
    unconfirmed = [str(uuid.uuid4()) for _ in range(5)]
    for challenge_id in unconfirmed:
        challenges.start_identity(challenge_id, "join", str(uuid.uuid4()), applicant(kit), office)
        session.commit()
    session.expire_all()
    assert [session.get(Challenge, c).reason for c in unconfirmed] == [None] * 4 + ["address_rate_limited"]
    # every code is still on record (the per-phone cap counts them all)
    assert session.query(SmsSend).filter(SmsSend.client == office).count() == 10
    assert session.query(SmsSend).filter(SmsSend.client == office, SmsSend.confirmed).count() == 6


def test_a_person_verified_again_with_a_new_phone_logs_in_with_the_new_one(world):
    challenges, kit, sms, session = world
    p = person("钟测")
    first = {"name": p.name, "id_type": "resident_id", "id_number": p.id_number, "phone": p.phone}
    new_phone = "139" + p.phone[3:] if not p.phone.startswith("139") else "137" + p.phone[3:]
    for data in (first, {**first, "phone": new_phone}):
        kit.people[p.id_number] = (p.name, data["phone"])
        challenge_id = str(uuid.uuid4())
        challenges.start_identity(challenge_id, "join", str(uuid.uuid4()), data)
        session.commit()
        verified = challenges.confirm(challenge_id, sms.last_code())
        session.commit()
    crypto = Crypto(CFG)
    rows = session.query(Identity).filter(Identity.person_ref == verified["person_ref"]).all()
    assert [r.phone_index for r in rows] == [crypto.phone_index(new_phone)]
    assert challenges.start_login(p.phone)["challenge_id"]  # the same answer for an unknown phone...
    assert sms.sent[-1][0] != p.phone  # ...and no SMS to the old phone
    challenges.start_login(new_phone)
    session.commit()
    assert sms.sent[-1][0] == new_phone


def test_sessions_end_when_idle_or_revoked(world):
    challenges, kit, sms, session = world
    token = challenges.open_session("ref-1")
    session.commit()
    assert challenges.check_session(token) == {"person_ref": "ref-1"}
    from services.verify.models import UserSession
    from shared.errors import Unauthenticated

    record = session.query(UserSession).filter(UserSession.person_ref == "ref-1").one()
    record.last_seen_at -= timedelta(seconds=CFG.session_idle_seconds + 1)
    session.commit()
    with pytest.raises(Unauthenticated):
        challenges.check_session(token)
    other = challenges.open_session("ref-2")
    challenges.revoke_session(other)
    session.commit()
    with pytest.raises(Unauthenticated):
        challenges.check_session(other)


def test_old_records_are_forgotten_and_live_ones_kept(world):
    from services.verify.models import UserSession

    challenges, kit, sms, session = world
    done = start(challenges, kit)
    challenges.confirm(done, sms.last_code())
    live = start(challenges, kit)  # a code is out: kept however old
    live_token = challenges.open_session("ref-live")
    challenges.open_session("ref-idle")
    session.commit()
    week = timedelta(days=CFG.challenge_days, minutes=1)
    session.execute(update(Challenge).where(Challenge.id.in_([done, live]))
                    .values(created_at=Challenge.created_at - week, finished_at=Challenge.finished_at - week))
    session.execute(update(SmsSend).values(sent_at=SmsSend.sent_at - timedelta(days=1, minutes=1)))
    session.execute(update(UserSession).where(UserSession.person_ref == "ref-idle")
                    .values(last_seen_at=UserSession.last_seen_at - timedelta(seconds=CFG.session_idle_seconds + 1)))
    session.commit()

    forgotten = challenges.forget_old(CFG.challenge_days)
    session.commit()
    assert forgotten["challenges"] >= 1 and forgotten["sessions"] >= 1 and forgotten["sms_sends"] >= 2
    session.expire_all()
    assert session.get(Challenge, done) is None
    assert session.get(Challenge, live).status == "code_sent"
    assert session.query(SmsSend).count() == 0
    assert challenges.check_session(live_token) == {"person_ref": "ref-live"}
    assert session.query(UserSession).filter(UserSession.person_ref == "ref-idle").count() == 0
