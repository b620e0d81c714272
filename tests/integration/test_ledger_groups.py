"""Several ledgers' work compared together (``Comparison.sync_ledgers``) on the real
PostgreSQL: each person fetched once in one Health Kit call, every ledger ended with
its own count and sync time in one transaction; when the Health Kit gives out midway,
a ledger whose people were all compared is done and the others failed (stale)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, event, func, insert, select
from sqlalchemy.orm import Session

import services.healthsync.comparison as comparison_module
import services.healthsync.models as models
from services.healthsync.comparison import Comparison
from shared.config import load_settings
from shared.crypto import Crypto
from shared.healthkit import HealthKitUnavailable, HealthRecord
from shared.migrate import upgrade_all
from tests.conftest import create_database, drop_database
from tests.people import person

CFG = load_settings({"SYNC_BATCH_RETRIES": "1"})
SAMPLED = datetime.now(timezone.utc) - timedelta(hours=3)
OUTBOX = models.Base.metadata.tables["healthsync.outbox"]


class CountingHealthKit:
    """Everyone is green; records each bulk call; gives out after ``works_for`` calls."""

    def __init__(self, works_for: int = 1000) -> None:
        self.calls: list[list[str]] = []
        self.works_for = works_for

    def bulk_status(self, id_numbers):
        if len(self.calls) >= self.works_for:
            raise HealthKitUnavailable("down")
        self.calls.append(list(id_numbers))
        return {n: HealthRecord(id_number=n, code_status="green", popup=None, last_test_sampled_at=SAMPLED,
                                last_test_result="negative", vaccination="booster", updated_at=SAMPLED) for n in id_numbers}


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


def _seed(engine, crypto, ledgers: dict[str, list[str]]) -> None:
    """ledger id → the names of its members (one person per name, however many ledgers)."""
    now = datetime.now(timezone.utc)
    with Session(engine) as s:
        refs = {}
        for names in ledgers.values():
            for name in names:
                if name in refs:
                    continue
                p = person(name)
                ref = refs[name] = crypto.person_ref("resident_id", p.id_number)
                s.execute(insert(models.Subject).values(
                    person_ref=ref, id_type="resident_id",
                    id_number_enc=crypto.master.encrypt_text(p.id_number, aad=ref.encode())))
                s.execute(insert(models.Snapshot).values(
                    person_ref=ref, code_status="green", popup=None, last_test_sampled_at=SAMPLED,
                    last_test_result="negative", vaccination="booster", checked_at=now - timedelta(days=1)))
        for ledger_id, names in ledgers.items():
            for name in names:
                s.execute(insert(models.Member).values(
                    membership_id=str(uuid.uuid4()), ledger_id=ledger_id, person_ref=refs[name], joined_at=now))
        s.commit()


def test_ledgers_compared_together_fetch_each_person_once_and_end_each_ledger(store):
    crypto = Crypto(CFG)
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    _seed(store, crypto, {a: ["甲", "乙", "丙"], b: ["丙", "丁"], c: ["戊"]})  # 丙 is in two ledgers
    kit = CountingHealthKit()
    with Session(store) as s:
        run_id = Comparison(s, crypto, kit, CFG).start_run("rpc")["run_id"]
        s.commit()
    with Session(store) as s:
        outcomes = Comparison(s, crypto, kit, CFG).sync_ledgers(run_id, [a, b, c])
    assert outcomes == {a: "done", b: "done", c: "done"}
    assert len(kit.calls) == 1 and len(kit.calls[0]) == len(set(kit.calls[0])) == 5

    with Session(store) as s:
        ledgers = {r.ledger_id: r for r in s.scalars(select(models.RunLedger).where(models.RunLedger.run_id == run_id))}
        assert {lid: r.status for lid, r in ledgers.items()} == {a: "done", b: "done", c: "done"}
        assert sum(r.people for r in ledgers.values()) == 5  # 丙 counted in the one ledger that compared them
        assert all(r.last_run_id == run_id for r in s.scalars(select(models.Snapshot)))
        syncs = {r.ledger_id: r for r in s.scalars(select(models.LedgerSync))}
        assert set(syncs) == {a, b, c} and all(r.last_status == "done" and r.last_run_id == run_id for r in syncs.values())
        synced = s.scalars(select(OUTBOX.c.aggregate_id).where(OUTBOX.c.event_type == "healthsync.ledger_synced")).all()
        assert sorted(synced) == sorted([a, b, c])
        assert s.get(models.Run, run_id).status == "finished"

    with Session(store) as s:  # a second delivery of the same work finds it ended
        assert Comparison(s, crypto, kit, CFG).sync_ledgers(run_id, [a, b]) == {a: "skipped", b: "skipped"}
    assert len(kit.calls) == 1


def test_when_the_health_kit_gives_out_midway_only_unfinished_ledgers_fail(store, monkeypatch):
    monkeypatch.setattr(comparison_module, "BATCH", 2)
    crypto = Crypto(CFG)
    a, b, c = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    _seed(store, crypto, {a: ["子", "丑"], b: ["寅", "卯"], c: ["辰", "巳"]})
    kit = CountingHealthKit(works_for=1)  # the first batch of two people, then nothing
    with Session(store) as s:
        run_id = Comparison(s, crypto, kit, CFG).start_run("rpc")["run_id"]
        s.commit()
    with Session(store) as s:
        outcomes = Comparison(s, crypto, kit, CFG).sync_ledgers(run_id, [a, b, c], backoff=0.01)

    with Session(store) as s:
        ledger_of = {ref: r.ledger_id for r in s.scalars(select(models.RunLedger)) for ref in r.assigned}
        snapshots = {r.person_ref: r for r in s.scalars(select(models.Snapshot))}
        compared = {ref for ref, r in snapshots.items() if r.last_run_id == run_id}
        assert len(compared) == 2
        stale = set(snapshots) - compared
        unfinished = {ledger_of[ref] for ref in stale}
        assert len(unfinished) == 2
        assert outcomes == {lid: "failed" if lid in unfinished else "done" for lid in (a, b, c)}
        assert {ref for ref, r in snapshots.items() if r.stale_since is not None} == stale
        ran = {r.ledger_id: r.people for r in s.scalars(select(models.RunLedger))}
        assert ran == {lid: len([ref for ref in compared if ledger_of[ref] == lid]) for lid in (a, b, c)}
        syncs = {r.ledger_id: r.last_status for r in s.scalars(select(models.LedgerSync))}
        assert syncs == {lid: "failed" if lid in unfinished else "done" for lid in (a, b, c)}
        news = s.scalars(select(OUTBOX.c.payload).where(OUTBOX.c.event_type == "healthsync.ledger_synced")).all()
        assert sorted((n["data"]["ledger_id"], n["data"]["status"]) for n in news) == sorted(
            (lid, "failed" if lid in unfinished else "done") for lid in (a, b, c))
        assert s.get(models.Run, run_id).status == "finished"


def test_people_gone_from_every_ledger_during_a_run_are_passed_over(store, monkeypatch):
    # e.g. a big ledger closed mid-run: its people's work stays queued, their subjects
    # are forgotten; a batch of only such people must not be fetched again for ever
    monkeypatch.setattr(comparison_module, "BATCH", 2)
    batches = []
    next_batch = Comparison._next_batch

    def counted_next_batch(self, *args):
        batches.append(args)
        assert len(batches) < 20, "the same people fetched again and again"
        return next_batch(self, *args)

    monkeypatch.setattr(Comparison, "_next_batch", counted_next_batch)
    crypto = Crypto(CFG)
    ledger = str(uuid.uuid4())
    _seed(store, crypto, {ledger: ["辰", "巳", "午", "未", "申"]})
    kit = CountingHealthKit()
    with Session(store) as s:
        comparison = Comparison(s, crypto, kit, CFG)
        run_id = comparison.start_run("rpc")["run_id"]
        s.commit()
        gone = s.scalar(select(models.RunLedger.assigned).where(models.RunLedger.run_id == run_id))[:3]
        s.execute(models.Member.__table__.delete().where(models.Member.person_ref.in_(gone)))
        comparison.forget_orphans(list(gone))
        s.commit()
    with Session(store) as s:
        assert Comparison(s, crypto, kit, CFG).sync_ledgers(run_id, [ledger]) == {ledger: "done"}
        status = Comparison(s, crypto, kit, CFG).run_status(run_id)
    assert status["status"] == "finished"
    assert status["people_compared"] == 2  # the two still members; the departed are not counted
    fetched = [n for call in kit.calls for n in call]
    assert len(fetched) == len(set(fetched)) == 2
    assert not {crypto.person_ref("resident_id", n) for n in fetched} & set(gone)



def test_people_forgotten_while_their_batch_is_at_the_health_kit_get_no_snapshot(store):
    # they leave their last ledger after the batch was read and before it is written: one
    # with a snapshot from before, one checked for the first time; neither is written
    crypto = Crypto(CFG)
    ledger = str(uuid.uuid4())
    _seed(store, crypto, {ledger: ["甲一", "乙二", "丙三", "丁四"]})
    with Session(store) as s:
        refs = s.scalars(select(models.Subject.person_ref).order_by(models.Subject.person_ref)).all()
        had_snapshot, first_check = refs[0], refs[1]
        s.execute(models.Snapshot.__table__.delete().where(models.Snapshot.person_ref == first_check))
        s.commit()

    class ForgetsThemMeanwhile(CountingHealthKit):
        def bulk_status(self, id_numbers):
            with Session(store) as other:
                gone = [had_snapshot, first_check]
                other.execute(models.Member.__table__.delete().where(models.Member.person_ref.in_(gone)))
                Comparison(other, crypto, self, CFG).forget_orphans(gone)
                other.commit()
            return super().bulk_status(id_numbers)

    kit = ForgetsThemMeanwhile()
    with Session(store) as s:
        run_id = Comparison(s, crypto, kit, CFG).start_run("rpc")["run_id"]
        s.commit()
    with Session(store) as s:
        assert Comparison(s, crypto, kit, CFG).sync_ledgers(run_id, [ledger]) == {ledger: "done"}
        status = Comparison(s, crypto, kit, CFG).run_status(run_id)
        snapshots = {r.person_ref: r for r in s.scalars(select(models.Snapshot))}
    assert len(kit.calls) == 1 and len(kit.calls[0]) == 4  # all four were read for the batch
    assert set(snapshots) == set(refs[2:]) and all(r.last_run_id == run_id for r in snapshots.values())
    assert status["people_compared"] == 2


def test_thousands_of_people_go_in_bulk_calls_of_at_most_1000_and_one_write_per_batch(store):
    # 2,300 people over three ledgers: three Health Kit calls (1000, 1000, 300) and three
    # statements writing snapshots, never one per member
    crypto = Crypto(CFG)
    now = datetime.now(timezone.utc)
    ledgers = [str(uuid.uuid4()) for _ in range(3)]
    by_id: dict = {}
    while len(by_id) < 2300:  # random ID numbers: some repeat
        p = person("批量")
        by_id[p.id_number] = p
    people = list(by_id.values())
    refs = [crypto.person_ref("resident_id", p.id_number) for p in people]
    with Session(store) as s:
        s.execute(insert(models.Subject), [
            {"person_ref": ref, "id_type": "resident_id",
             "id_number_enc": crypto.master.encrypt_text(p.id_number, aad=ref.encode())}
            for p, ref in zip(people, refs)
        ])
        s.execute(insert(models.Member), [
            {"membership_id": str(uuid.uuid4()), "ledger_id": ledgers[i % 3], "person_ref": ref, "joined_at": now}
            for i, ref in enumerate(refs)
        ])
        s.commit()
    kit = CountingHealthKit()
    with Session(store) as s:
        run_id = Comparison(s, crypto, kit, CFG).start_run("rpc")["run_id"]
        s.commit()
    writes = []

    def count_writes(conn, cursor, statement, parameters, context, executemany):
        if "INSERT INTO healthsync.snapshots" in statement or "UPDATE healthsync.snapshots" in statement:
            writes.append(executemany)

    event.listen(store, "before_cursor_execute", count_writes)
    try:
        with Session(store) as s:
            assert Comparison(s, crypto, kit, CFG).sync_ledgers(run_id, ledgers) == dict.fromkeys(ledgers, "done")
    finally:
        event.remove(store, "before_cursor_execute", count_writes)
    assert sorted(len(call) for call in kit.calls) == [300, 1000, 1000]
    assert writes == [False, False, False]  # three statements, none of them an executemany
    with Session(store) as s:
        assert s.scalar(select(func.count()).select_from(models.Snapshot).where(models.Snapshot.last_run_id == run_id)) == 2300
