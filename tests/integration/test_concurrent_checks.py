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


class RedHealthKit:
    """Says everyone asked about is now red (the same record every time)."""

    def bulk_status(self, id_numbers):
        return {n: HealthRecord(id_number=n, code_status="red", popup=None, last_test_sampled_at=SAMPLED,
                                last_test_result="negative", vaccination="booster", updated_at=SAMPLED) for n in id_numbers}


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


def _status_changes(s: Session) -> int:
    outbox = models.Base.metadata.tables["healthsync.outbox"]
    return s.scalar(select(func.count()).select_from(outbox).where(outbox.c.event_type == "healthsync.status_changed"))


def test_two_checks_at_once_announce_one_change():
    url = create_database()
    try:
        upgrade_all(url)
        engine = create_engine(url)
        crypto = Crypto(CFG)
        ref = _known_green_person(engine, crypto, "并发", datetime.now(timezone.utc))

        first = Session(engine)
        Comparison(first, crypto, RedHealthKit(), CFG).check_people([ref])  # written, not yet committed

        def second_check():
            with Session(engine) as second:
                Comparison(second, crypto, RedHealthKit(), CFG).check_people([ref])
                second.commit()

        other = threading.Thread(target=second_check)
        other.start()
        time.sleep(0.5)  # the second check is now waiting for the first
        first.commit()
        first.close()
        other.join(10)
        assert not other.is_alive()

        with Session(engine) as s:
            changes = _status_changes(s)
            alerts = s.scalar(select(func.count()).select_from(models.Alert))
        assert changes == 1
        assert alerts == 1
        engine.dispose()
    finally:
        drop_database(url)


class HeldHealthKit:
    """Answers with ``code_status`` (record version ``version``), but only once ``go``
    is set (``asked`` is set when asked): a check that asked first and is answered late."""

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


@pytest.mark.parametrize("versioned", [True, False], ids=["record-versions", "no-versions"])
def test_a_check_that_asked_first_and_writes_last_does_not_bring_back_the_older_record(versioned):
    # The Health Kit had the person red (an older record), then green again (newer). One
    # check asked while red and is answered late; another asks after, gets green and
    # writes first. The late red answer must not overwrite green (nor raise an alert).
    url = create_database()
    try:
        upgrade_all(url)
        engine = create_engine(url)
        crypto = Crypto(CFG)
        ref = _known_green_person(engine, crypto, "先问后写", datetime.now(timezone.utc) - timedelta(minutes=5))
        red_at = datetime.now(timezone.utc) - timedelta(minutes=1)
        green_at = red_at + timedelta(seconds=30)
        held = HeldHealthKit("red", red_at if versioned else None, threading.Event())
        late: dict = {}

        def late_check():
            with Session(engine) as s:
                late["compared"] = Comparison(s, crypto, held, CFG).check_people([ref])
                s.commit()

        asked_first = threading.Thread(target=late_check)
        asked_first.start()
        assert held.asked.wait(10)
        with Session(engine) as s:
            assert Comparison(s, crypto, HeldHealthKit("green", green_at if versioned else None), CFG).check_people([ref]) == 1
            s.commit()
        held.go.set()
        asked_first.join(10)
        assert not asked_first.is_alive()
        assert late["compared"] == 1  # it was compared; the newer record stands

        with Session(engine) as s:
            snapshot = s.get(models.Snapshot, ref)
            assert snapshot.code_status == "green"
            assert _status_changes(s) == 0
            assert s.scalar(select(func.count()).select_from(models.Alert)) == 0
        engine.dispose()
    finally:
        drop_database(url)


def test_the_newer_record_wins_even_when_it_was_asked_for_first():
    # Where the Health Kit versions its records, the version decides, not who asked first:
    # a check that asked first but was answered with the newer record (green) still
    # overwrites the older (red) one another check wrote meanwhile.
    url = create_database()
    try:
        upgrade_all(url)
        engine = create_engine(url)
        crypto = Crypto(CFG)
        ref = _known_green_person(engine, crypto, "后答新", datetime.now(timezone.utc) - timedelta(minutes=5))
        red_at = datetime.now(timezone.utc) - timedelta(minutes=1)
        held = HeldHealthKit("green", red_at + timedelta(seconds=30), threading.Event())

        def answered_late_with_the_newer_record():
            with Session(engine) as s:
                Comparison(s, crypto, held, CFG).check_people([ref])
                s.commit()

        asked_first = threading.Thread(target=answered_late_with_the_newer_record)
        asked_first.start()
        assert held.asked.wait(10)
        with Session(engine) as s:
            Comparison(s, crypto, HeldHealthKit("red", red_at), CFG).check_people([ref])
            s.commit()
        held.go.set()
        asked_first.join(10)
        assert not asked_first.is_alive()

        with Session(engine) as s:
            assert s.get(models.Snapshot, ref).code_status == "green"
            assert _status_changes(s) == 2  # green -> red, then red -> green
        engine.dispose()
    finally:
        drop_database(url)
