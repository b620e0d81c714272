"""Two checks of the same person at once (a run, a re-check, the change feed, a join)
report a status change once: the second waits for the first and compares with what the
first wrote, so admins get one alert, not two."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

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


def test_two_checks_at_once_announce_one_change():
    url = create_database()
    try:
        upgrade_all(url)
        engine = create_engine(url)
        crypto = Crypto(CFG)
        p = person("并发")
        ref = crypto.person_ref("resident_id", p.id_number)
        now = datetime.now(timezone.utc)
        with Session(engine) as s:
            s.execute(insert(models.Subject).values(
                person_ref=ref, id_type="resident_id", id_number_enc=crypto.master.encrypt_text(p.id_number, aad=ref.encode())))
            s.execute(insert(models.Member).values(
                membership_id=str(uuid.uuid4()), ledger_id=str(uuid.uuid4()), person_ref=ref, joined_at=now))
            s.execute(insert(models.Snapshot).values(
                person_ref=ref, code_status="green", popup=None, last_test_sampled_at=SAMPLED,
                last_test_result="negative", vaccination="booster", checked_at=now))
            s.commit()

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
            changes = s.scalar(select(func.count()).select_from(models.Base.metadata.tables["healthsync.outbox"])
                               .where(models.Base.metadata.tables["healthsync.outbox"].c.event_type == "healthsync.status_changed"))
            alerts = s.scalar(select(func.count()).select_from(models.Alert))
        assert changes == 1
        assert alerts == 1
        engine.dispose()
    finally:
        drop_database(url)
