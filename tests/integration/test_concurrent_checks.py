"""Two checks of the same person at once (a run, a re-check, the change feed, a join)
report a status change once: the second waits for the first and compares with what the
first wrote, so admins get one alert, not two. And the one that asked the Health Kit
first, writing last, does not overwrite the newer record with the older one."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, func, insert, select
from sqlalchemy.orm import Session

import services.healthsync.models as models
from services.healthsync.comparison import Comparison
from shared.config import load_settings
from shared.crypto import Crypto
from shared.healthkit import HealthRecord
from shared.migrate import upgrade_all
from tests.conftest import create_database, drop_database
from tests.people import person

CFG = load_settings({})


SAMPLED = datetime.now(timezone.utc) - timedelta(hours=3)


class HealthKitAnswer:
    """Answers everyone with ``code_status`` (record version ``version``); if given
    ``go``, only once it is set (``asked`` is set when asked): a check that asked and is
    answered late."""

    def __init__(self, code_status: str, version: datetime | None, go: threading.Event | None = None):
        self.code_status, self.version, self.go = code_status, version, go
        self.asked = threading.Event()

    def bulk_status(self, id_numbers):
        self.asked.set()
        if self.go is not None:
            assert self.go.wait(10)
        return {n: HealthRecord(id_number=n, code_status=self.code_status, popup=None, last_test_sampled_at=SAMPLED,
                                last_test_result="negative", vaccination="booster", updated_at=self.version)
                for n in id_numbers}


@pytest.fixture
def store():
    url = create_database()
    upgrade_all(url)
    engine = create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
        drop_database(url)


def _known_green_person(engine, crypto, name: str, checked_at: datetime) -> str:
    p = person(name)
    ref = crypto.person_ref("resident_id", p.id_number)
    with Session(engine) as s:
        s.execute(insert(models.Subject).values(
            person_ref=ref, id_type="resident_id", id_number_enc=crypto.master.encrypt_text(p.id_number, aad=ref.encode())))
        s.execute(insert(models.Member).values(
            membership_id=str(uuid.uuid4()), ledger_id=str(uuid.uuid4()), person_ref=ref, joined_at=checked_at))
        s.execute(insert(models.Snapshot).values(
            person_ref=ref, code_status="green", popup=None, last_test_sampled_at=SAMPLED,
            last_test_result="negative", vaccination="booster", checked_at=checked_at))
        s.commit()
    return ref


def _check(engine, crypto, kit, ref: str) -> int:
    with Session(engine) as s:
        compared = Comparison(s, crypto, kit, CFG).check_people([ref])
        s.commit()
    return compared


def _asked_first_answered_last(engine, crypto, ref: str, late: HealthKitAnswer, meanwhile: HealthKitAnswer) -> int:
    """A check answered by ``late`` asks first; another, answered by ``meanwhile``, asks
    and writes; then the first is answered and writes. The first check's count."""
    compared: list[int] = []
    first = threading.Thread(target=lambda: compared.append(_check(engine, crypto, late, ref)))
    first.start()
    assert late.asked.wait(10)
    assert _check(engine, crypto, meanwhile, ref) == 1
    late.go.set()
    first.join(10)
    assert not first.is_alive()
    return compared[0]


def _status_changes(s: Session) -> int:
    outbox = models.Base.metadata.tables["healthsync.outbox"]
    return s.scalar(select(func.count()).select_from(outbox).where(outbox.c.event_type == "healthsync.status_changed"))


def test_two_checks_at_once_announce_one_change(store):
    crypto = Crypto(CFG)
    ref = _known_green_person(store, crypto, "并发", datetime.now(timezone.utc))

    first = Session(store)
    Comparison(first, crypto, HealthKitAnswer("red", SAMPLED), CFG).check_people([ref])  # written, not yet committed
    other = threading.Thread(target=lambda: _check(store, crypto, HealthKitAnswer("red", SAMPLED), ref))
    other.start()
    time.sleep(0.5)  # the second check is now waiting for the first
    first.commit()
    first.close()
    other.join(10)
    assert not other.is_alive()

    with Session(store) as s:
        changes = _status_changes(s)
        alerts = s.scalar(select(func.count()).select_from(models.Alert))
    assert changes == 1
    assert alerts == 1


@pytest.mark.parametrize("versioned", [True, False], ids=["record-versions", "no-versions"])
def test_a_check_that_asked_first_and_writes_last_does_not_bring_back_the_older_record(store, versioned):
    # The Health Kit had the person red (an older record), then green again (newer). One
    # check asked while red and is answered late; another asks after, gets green and
    # writes first. The late red answer must not overwrite green (nor raise an alert).
    crypto = Crypto(CFG)
    ref = _known_green_person(store, crypto, "先问后写", datetime.now(timezone.utc) - timedelta(minutes=5))
    red_at = datetime.now(timezone.utc) - timedelta(minutes=1)
    green_at = red_at + timedelta(seconds=30)
    late = HealthKitAnswer("red", red_at if versioned else None, threading.Event())
    meanwhile = HealthKitAnswer("green", green_at if versioned else None)
    assert _asked_first_answered_last(store, crypto, ref, late, meanwhile) == 1  # compared; the newer record stands

    with Session(store) as s:
        assert s.get(models.Snapshot, ref).code_status == "green"
        assert _status_changes(s) == 0
        assert s.scalar(select(func.count()).select_from(models.Alert)) == 0


def test_the_newer_record_wins_even_when_it_was_asked_for_first(store):
    # Where the Health Kit versions its records, the version decides, not who asked first:
    # a check that asked first but was answered with the newer record (green) still
    # overwrites the older (red) one another check wrote meanwhile.
    crypto = Crypto(CFG)
    ref = _known_green_person(store, crypto, "后答新", datetime.now(timezone.utc) - timedelta(minutes=5))
    red_at = datetime.now(timezone.utc) - timedelta(minutes=1)
    late = HealthKitAnswer("green", red_at + timedelta(seconds=30), threading.Event())
    _asked_first_answered_last(store, crypto, ref, late, HealthKitAnswer("red", red_at))

    with Session(store) as s:
        assert s.get(models.Snapshot, ref).code_status == "green"
        assert _status_changes(s) == 2  # green -> red, then red -> green


def _joined(crypto, ref: str, id_number: str) -> dict:
    return {
        "membership_id": str(uuid.uuid4()), "ledger_id": str(uuid.uuid4()), "person_ref": ref,
        "subject": crypto.seal("healthsync", {"id_type": "resident_id", "id_number": id_number}),
        "joined_at": datetime.now(timezone.utc).isoformat(),
    }


def test_a_new_member_is_checked_at_once_with_the_id_number_its_event_brought(store):
    crypto = Crypto(CFG)
    asked: list[list[str]] = []

    class Kit(HealthKitAnswer):
        def bulk_status(self, id_numbers):
            asked.append(list(id_numbers))
            return super().bulk_status(id_numbers)

    newcomer = person("新人")
    new_ref = crypto.person_ref("resident_id", newcomer.id_number)
    known_ref = _known_green_person(store, crypto, "老人", SAMPLED)  # in another ledger already
    with Session(store) as s:
        known_id = crypto.master.decrypt_text(s.get(models.Subject, known_ref).id_number_enc, aad=known_ref.encode())
    for ref, id_number in ((new_ref, newcomer.id_number), (known_ref, known_id)):
        with Session(store) as s:
            comparison = Comparison(s, crypto, Kit("yellow", SAMPLED + timedelta(hours=1)), CFG)
            comparison.check_new_member(*comparison.member_joined(_joined(crypto, ref, id_number)))
            s.commit()
    assert asked == [[newcomer.id_number], [known_id]]
    with Session(store) as s:
        codes = dict(s.execute(select(models.Snapshot.person_ref, models.Snapshot.code_status)).all())
        assert codes == {new_ref: "yellow", known_ref: "yellow"}
        assert s.scalar(select(func.count()).select_from(models.Member).where(models.Member.person_ref == known_ref)) == 2
