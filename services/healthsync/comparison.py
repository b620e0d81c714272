"""Comparing members with the Health Kit: the projection of memberships, single-person
checks, and runs fanned out per ledger. Plain code over a session and the Health Kit
adapter.

A run creates one ``run_ledgers`` row and one ``healthsync.ledger_work`` message per
ledger, and gives every person to exactly one of their ledgers' work (the row's
``assigned`` list, all in one statement): a person in several ledgers is fetched once
per run, and workers never wait for each other. Any number of healthsync instances take
the messages; the messages an instance holds at once are compared together
(:mod:`services.healthsync.ledger_work`), their people in batches of at most 1,000;
each ledger's row counts how far its work has gone through its list, in the
transaction that writes the batch's snapshots. A worker killed mid-batch leaves its
ledgers where they were (the transaction rolls back) and the redelivered message
compares exactly the people not yet compared.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from sqlalchemy import ARRAY, Text, and_, any_, bindparam, cast, delete, exists, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from services.healthsync.alerts import alert_for
from services.healthsync.ledger_view import admin_rules, evaluate, health_view, ledger_rows_query, load_rules
from services.healthsync.ledger_view import iso as _iso
from services.healthsync.models import (
    Alert,
    FeedCursor,
    LedgerAdmin,
    LedgerRules,
    LedgerSync,
    Member,
    Run,
    RunLedger,
    Snapshot,
    Subject,
)
from shared.config import Settings
from shared.crypto import Crypto
from shared.db import array_literal, compiled_once
from shared.errors import Forbidden, LedgerClosed, NotFound, RateLimited
from shared.health import DEFAULT_RULES
from shared.healthkit import ID_TYPES, MAX_BULK, HealthKit, HealthKitUnavailable, HealthRecord
from shared.outbox import add_event, add_events

log = logging.getLogger(__name__)

BATCH = MAX_BULK
#: a finished run's lists of people are kept this long (its ledgers' rows RUN_HISTORY_DAYS)
RUN_PEOPLE_KEEP = timedelta(days=1)
#: a ledger's end tries to finish its run only when fewer ledgers than this are left
#: (more workers than this ending at the same instant: the housekeeping timer finishes it)
FINISH_CHECK_BELOW = 200

#: The values a check writes over a snapshot (``{new}``: the checked record; ``s``: the row
#: as it was, whose values are kept as before_*), keeping the pending-since time of a
#: still-pending test. Written only where the check is not older than the row's (below).
_CHECKED = """
            before_code_status = s.code_status,
            before_popup = s.popup,
            before_last_test_sampled_at = s.last_test_sampled_at,
            before_last_test_result = s.last_test_result,
            before_vaccination = s.vaccination,
            before_checked_at = s.checked_at,
            code_status = {new}.code_status,
            popup = {new}.popup,
            last_test_sampled_at = {new}.last_test_sampled_at,
            last_test_result = {new}.last_test_result,
            pending_seen_at = CASE
                WHEN {new}.last_test_result IS DISTINCT FROM 'pending' THEN NULL
                WHEN s.last_test_result = 'pending'
                     AND s.last_test_sampled_at IS NOT DISTINCT FROM {new}.last_test_sampled_at
                THEN COALESCE(s.pending_seen_at, {new}.pending_seen_at)
                ELSE {new}.pending_seen_at END,
            vaccination = {new}.vaccination,
            record_updated_at = {new}.record_updated_at,
            checked_at = GREATEST(s.checked_at, {new}.checked_at),
            stale_since = NULL,
            last_run_id = {new}.last_run_id"""
#: A check older than the snapshot's never overwrites it (two checks of a person at once,
#: the one that asked the Health Kit first writing last): by the record's version where
#: the Health Kit gives one, else by when each check asked.
_NOT_OLDER = """
        CASE WHEN s.record_updated_at IS NOT NULL AND {new}.record_updated_at IS NOT NULL
                 THEN {new}.record_updated_at >= s.record_updated_at
                 ELSE {new}.checked_at >= s.checked_at END"""
_WRITTEN = """
        RETURNING s.person_ref, s.before_code_status, s.before_popup, s.before_last_test_sampled_at,
                  s.before_last_test_result, s.before_vaccination,
                  s.before_checked_at IS NOT NULL
                  AND (s.before_code_status, s.before_popup, s.before_last_test_result,
                       s.before_last_test_sampled_at, s.before_vaccination)
                      IS DISTINCT FROM (s.code_status, s.popup, s.last_test_result,
                                        s.last_test_sampled_at, s.vaccination) AS changed"""
#: One statement per batch (set-based). A snapshot is updated in place, its values before
#: the check kept from the row the update locked (two checks of one person at once: the
#: second sees the first's values, so a change is announced once); a snapshot deleted
#: meanwhile (its person forgotten) is not written again. A person's first snapshot is
#: written only while their subject is there (locked: a person being forgotten waits, or
#: is passed over). Returns every person compared: whether their record changed and, if
#: so, the values it had before (one whose snapshot is newer than this check: unchanged).
WRITE_SNAPSHOTS = text(
    f"""
    WITH incoming AS (
        SELECT t.*, CASE WHEN t.last_test_result = 'pending' THEN CAST(:now AS timestamptz) END AS pending_seen_at,
               CAST(:now AS timestamptz) AS checked_at, CAST(:run_id AS text) AS last_run_id
        FROM unnest(
            CAST(:refs AS text[]), CAST(:codes AS text[]), CAST(:popups AS text[]),
            CAST(:sampled AS timestamptz[]), CAST(:results AS text[]), CAST(:vaccinations AS text[]),
            CAST(:versions AS timestamptz[])
        ) AS t(person_ref, code_status, popup, last_test_sampled_at, last_test_result, vaccination,
               record_updated_at)
    ),
    updated AS (
        UPDATE healthsync.snapshots s SET {_CHECKED.format(new="i")}
        FROM incoming i
        WHERE s.person_ref = i.person_ref AND {_NOT_OLDER.format(new="i")}
        {_WRITTEN}
    ),
    first_seen AS (
        SELECT i.* FROM incoming i JOIN healthsync.subjects sub USING (person_ref)
        WHERE NOT EXISTS (SELECT 1 FROM updated u WHERE u.person_ref = i.person_ref)
        FOR KEY SHARE OF sub
    ),
    inserted AS (
        INSERT INTO healthsync.snapshots AS s (person_ref, code_status, popup, last_test_sampled_at,
            last_test_result, pending_seen_at, vaccination, record_updated_at, checked_at, stale_since,
            last_run_id)
        SELECT person_ref, code_status, popup, last_test_sampled_at, last_test_result, pending_seen_at,
               vaccination, record_updated_at, checked_at, NULL, last_run_id
        FROM first_seen
        ON CONFLICT (person_ref) DO UPDATE SET {_CHECKED.format(new="EXCLUDED")}
        WHERE {_NOT_OLDER.format(new="EXCLUDED")}
        {_WRITTEN}
    ),
    written AS (SELECT * FROM updated UNION ALL SELECT * FROM inserted)
    SELECT person_ref, changed,
           CASE WHEN changed THEN before_code_status END AS code_status,
           CASE WHEN changed THEN before_popup END AS popup,
           CASE WHEN changed THEN before_last_test_sampled_at END AS last_test_sampled_at,
           CASE WHEN changed THEN before_last_test_result END AS last_test_result,
           CASE WHEN changed THEN before_vaccination END AS vaccination
    FROM written
    UNION ALL
    SELECT person_ref, false, NULL, NULL, NULL, NULL, NULL FROM first_seen f
    WHERE NOT EXISTS (SELECT 1 FROM inserted w WHERE w.person_ref = f.person_ref)
    """
)
#: A run's next batch: up to :limit people of these ledgers' work (those still pending),
#: each ledger's from where its work got to, with the ID number of those still known.
#: In (ledger, position) order.
NEXT_BATCH = text(
    """
    WITH batch AS (
        SELECT rl.ledger_id, p.person_ref, p.n
        FROM healthsync.run_ledgers rl
        CROSS JOIN LATERAL unnest(rl.assigned[rl.gone_through + 1:]) WITH ORDINALITY AS p(person_ref, n)
        WHERE rl.run_id = :run_id AND rl.ledger_id = ANY(CAST(:ledgers AS text[])) AND rl.status = 'pending'
        ORDER BY rl.ledger_id, p.n
        LIMIT :limit
    )
    SELECT batch.ledger_id, batch.person_ref, s.id_number_enc
    FROM batch LEFT JOIN healthsync.subjects s USING (person_ref)
    ORDER BY batch.ledger_id, batch.n
    """
)
#: In the same transaction as a run's batch: each ledger's work goes on after the people
#: the batch took and counts those of them that were compared (the run's progress is
#: the sum of these counts).
MARK_BATCH = text(
    """
    UPDATE healthsync.run_ledgers r SET people = r.people + c.compared, gone_through = r.gone_through + c.taken
    FROM unnest(CAST(:ledgers AS text[]), CAST(:taken AS integer[]), CAST(:compared AS integer[]))
         AS c(ledger_id, taken, compared)
    WHERE r.run_id = :run_id AND r.ledger_id = c.ledger_id
    """
)
#: A new member into the projection (a person, then their membership), each as is if known.
ADD_SUBJECT = compiled_once(
    pg_insert(Subject)
    .values(person_ref=bindparam("person_ref"), id_type=bindparam("id_type"), id_number_enc=bindparam("id_number_enc"))
    .on_conflict_do_nothing()
)
ADD_MEMBER = compiled_once(
    pg_insert(Member)
    .values(
        membership_id=bindparam("membership_id"), ledger_id=bindparam("ledger_id"),
        person_ref=bindparam("person_ref"), joined_at=bindparam("joined_at"),
    )
    .on_conflict_do_nothing()
)
#: Ledgers of these whose work has people left.
UNFINISHED = text(
    """
    SELECT ledger_id FROM healthsync.run_ledgers
    WHERE run_id = :run_id AND ledger_id = ANY(CAST(:ledgers AS text[]))
      AND gone_through < COALESCE(cardinality(assigned), 0)
    """
)
#: A run's ledgers, each with the people given to its work: every person to one of their
#: ledgers (the first, in ledger_id order); a ledger whose people all went to other
#: ledgers gets an empty list.
ASSIGN = text(
    """
    WITH ledgers AS (
        SELECT DISTINCT ledger_id FROM healthsync.members
        WHERE CAST(:ledger_id AS text) IS NULL OR ledger_id = :ledger_id
    ),
    people AS (
        SELECT DISTINCT ON (person_ref) person_ref, ledger_id FROM healthsync.members
        WHERE CAST(:ledger_id AS text) IS NULL OR ledger_id = :ledger_id
        ORDER BY person_ref, ledger_id
    ),
    assigned AS (
        SELECT ledger_id, array_agg(person_ref) AS refs FROM people GROUP BY ledger_id
    )
    INSERT INTO healthsync.run_ledgers (run_id, ledger_id, status, people, gone_through, assigned)
    SELECT :run_id, l.ledger_id, 'pending', 0, 0, COALESCE(a.refs, '{}')
    FROM ledgers l LEFT JOIN assigned a USING (ledger_id)
    RETURNING ledger_id
    """
)


def now() -> datetime:
    return datetime.now(timezone.utc)


def _uuid(value, what: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise NotFound(f"No such {what}.") from None


class Comparison:
    def __init__(self, session: Session, crypto: Crypto, health_kit: HealthKit, cfg: Settings) -> None:
        self.session = session
        self.crypto = crypto
        self.health_kit = health_kit
        self.cfg = cfg

    # -- projection -----------------------------------------------------------------

    def member_joined(self, data: dict) -> tuple[str, bytes]:
        """Add the membership to the projection; (person_ref, encrypted ID number) for
        the first check (:meth:`check_new_member`)."""
        subject = self.crypto.unseal("healthsync", data["subject"])
        person_ref = data["person_ref"]
        id_number_enc = self.crypto.master.encrypt_text(subject["id_number"], aad=person_ref.encode())
        self.session.execute(ADD_SUBJECT, {
            "person_ref": person_ref, "id_type": subject["id_type"], "id_number_enc": id_number_enc,
        })
        self.session.execute(ADD_MEMBER, {
            "membership_id": data["membership_id"],
            "ledger_id": data["ledger_id"],
            "person_ref": person_ref,
            "joined_at": datetime.fromisoformat(data["joined_at"]),
        })
        return person_ref, id_number_enc

    def check_new_member(self, person_ref: str, id_number_enc: bytes) -> None:
        """A new member's first check, with the ID number the event brought (the stored
        one, if the person was known already, encrypts the same number): no re-read.
        Raises HealthKitUnavailable."""
        self._compare([(person_ref, id_number_enc)], None)

    def member_left(self, data: dict) -> None:
        self.session.execute(delete(Member).where(Member.membership_id == data["membership_id"]))
        if data.get("person_ref"):
            self.forget_orphans([data["person_ref"]])

    def ledger_activated(self, data: dict) -> None:
        self.admin_added({"ledger_id": data["ledger_id"], "person_ref": data["owner_ref"], "role": "owner"})
        self.rules_changed({"ledger_id": data["ledger_id"], "rules": data.get("rules") or DEFAULT_RULES,
                            "org_name": data["org_name"]})

    def rules_changed(self, data: dict) -> None:
        values = {k: data["rules"][k] for k in DEFAULT_RULES}
        if data.get("org_name"):
            values["org_name"] = data["org_name"]
        self.session.execute(
            pg_insert(LedgerRules)
            .values(ledger_id=data["ledger_id"], org_name=data.get("org_name") or "", **{k: data["rules"][k] for k in DEFAULT_RULES})
            .on_conflict_do_update(index_elements=[LedgerRules.ledger_id], set_=values)
        )

    def admin_added(self, data: dict) -> None:
        self.session.execute(
            pg_insert(LedgerAdmin)
            .values(ledger_id=data["ledger_id"], person_ref=data["person_ref"], role=data["role"])
            .on_conflict_do_update(index_elements=[LedgerAdmin.ledger_id, LedgerAdmin.person_ref],
                                   set_={"role": data["role"]})
        )

    def admin_removed(self, data: dict) -> None:
        self.session.execute(
            delete(LedgerAdmin).where(LedgerAdmin.ledger_id == data["ledger_id"], LedgerAdmin.person_ref == data["person_ref"])
        )

    def ledger_closed(self, ledger_id: str, closed_at: datetime) -> None:
        refs = self.session.scalars(select(Member.person_ref).where(Member.ledger_id == ledger_id)).all()
        self.session.execute(delete(Member).where(Member.ledger_id == ledger_id))
        # its admins stay, marked: they are told the ledger closed, not refused as strangers
        self.session.execute(
            update(LedgerAdmin).where(LedgerAdmin.ledger_id == ledger_id).values(ledger_closed_at=closed_at)
        )
        self.session.execute(delete(LedgerRules).where(LedgerRules.ledger_id == ledger_id))
        self.session.execute(delete(Alert).where(Alert.ledger_id == ledger_id))
        self.forget_orphans(list(set(refs)))

    def forget_orphans(self, person_refs: list[str]) -> None:
        """People in no ledger any more: their ID number and health snapshot go."""
        if not person_refs:
            return
        orphan = and_(
            Subject.person_ref.in_(person_refs),
            ~exists().where(Member.person_ref == Subject.person_ref),
        )
        gone = self.session.scalars(delete(Subject).where(orphan).returning(Subject.person_ref)).all()
        if gone:
            self.session.execute(delete(Snapshot).where(Snapshot.person_ref.in_(gone)))

    # -- checking people ----------------------------------------------------------------

    def check_people(self, person_refs: list[str], run_id: str | None = None) -> int:
        """Fetch these people from the Health Kit (≤ 1,000 per call) and write their
        snapshots in one statement per batch. Raises HealthKitUnavailable."""
        compared = 0
        for start in range(0, len(person_refs), BATCH):
            compared += len(self._check_batch(person_refs[start : start + BATCH], run_id))
        return compared

    def _check_batch(self, person_refs: list[str], run_id: str | None) -> list[str]:
        """Check these people (≤ 1,000); the ones compared (those still known)."""
        subjects = self.session.execute(
            select(Subject.person_ref, Subject.id_number_enc)
            .where(Subject.person_ref == any_(cast(person_refs, ARRAY(Text))))
        ).all()
        return self._compare(subjects, run_id)

    def _compare(self, subjects, run_id: str | None) -> list[str]:
        """Fetch these (person_ref, id_number_enc) from the Health Kit in one call and
        write their snapshots in one statement; the people compared."""
        if not subjects:
            return []
        id_of = {ref: self.crypto.master.decrypt_text(enc, aad=ref.encode()) for ref, enc in subjects}
        asked_at = now()
        records = self.health_kit.bulk_status(list(id_of.values()))
        rows = [self._row(ref, records.get(id_number)) for ref, id_number in id_of.items()]
        compared = self.session.execute(
            WRITE_SNAPSHOTS,
            {
                "refs": array_literal(r["person_ref"] for r in rows),
                "codes": array_literal(r["code_status"] for r in rows),
                "popups": array_literal(r["popup"] for r in rows),
                "sampled": array_literal(r["last_test_sampled_at"] for r in rows),
                "results": array_literal(r["last_test_result"] for r in rows),
                "vaccinations": array_literal(r["vaccination"] for r in rows),
                "versions": array_literal(r["record_updated_at"] for r in rows),
                "now": asked_at,
                "run_id": run_id,
            },
        ).all()
        self._announce_changes(rows, {r.person_ref: r for r in compared if r.changed})
        return [r.person_ref for r in compared]

    @staticmethod
    def _row(ref: str, record: HealthRecord | None) -> dict:
        if record is None:  # the Health Kit no longer knows this ID
            return {"person_ref": ref, "code_status": "unknown", "popup": None, "last_test_sampled_at": None,
                    "last_test_result": None, "vaccination": "none_found", "record_updated_at": None}
        return {
            "person_ref": ref,
            "code_status": record.code_status,
            "popup": record.popup,
            "last_test_sampled_at": record.last_test_sampled_at,
            "last_test_result": record.last_test_result,
            "vaccination": record.vaccination,
            "record_updated_at": record.updated_at,
        }

    def _announce_changes(self, rows: list[dict], old: dict[str, Snapshot]) -> None:
        changed_people = []
        for row in rows:
            before = old.get(row["person_ref"])
            if before is None:
                continue
            changed = []
            if (before.code_status, before.popup) != (row["code_status"], row["popup"]):
                changed.append("code_status")
            if (before.last_test_result, before.last_test_sampled_at) != (
                row["last_test_result"], row["last_test_sampled_at"]
            ):
                changed.append("test_result")
            if before.vaccination != row["vaccination"]:
                changed.append("vaccination")
            if changed:
                changed_people.append((row, before, changed))
        if not changed_people:
            return
        ledgers_of: dict[str, list[str]] = {}
        memberships_of: dict[str, list[tuple[str, str]]] = {}
        for ref, ledger_id, membership_id in self.session.execute(
            select(Member.person_ref, Member.ledger_id, Member.membership_id).where(
                Member.person_ref.in_([r["person_ref"] for r, _, _ in changed_people])
            )
        ):
            ledgers_of.setdefault(ref, []).append(ledger_id)
            memberships_of.setdefault(ref, []).append((ledger_id, membership_id))
        self._store_alerts(changed_people, memberships_of)

        def fields(code_status, popup, result, sampled_at, vaccination):
            return {
                "code_status": code_status, "popup": popup, "test_result": result,
                "test_sampled_at": _iso(sampled_at), "vaccination": vaccination,
            }

        for row, before, changed in changed_people:
            add_event(
                self.session,
                "healthsync.status_changed",
                {
                    "person_ref": row["person_ref"],
                    "ledger_ids": sorted(set(ledgers_of.get(row["person_ref"], []))),
                    "before": fields(before.code_status, before.popup, before.last_test_result,
                                     before.last_test_sampled_at, before.vaccination),
                    "after": fields(row["code_status"], row["popup"], row["last_test_result"],
                                    row["last_test_sampled_at"], row["vaccination"]),
                    "changed": changed,
                },
                row["person_ref"],
            )

    def _store_alerts(self, changed_people: list, memberships_of: dict) -> None:
        """An alert for each ledger in which a changed person became abnormal, got a new
        reason to be, or stopped being, under that ledger's rules (``alert_for``)."""
        at = now()
        rules_cache: dict[str, dict] = {}
        alerts = []
        for row, before, _ in changed_people:
            after = SimpleNamespace(**row)
            for ledger_id, membership_id in memberships_of.get(row["person_ref"], []):
                rules = rules_cache.setdefault(ledger_id, load_rules(self.session, ledger_id))
                alert = alert_for(evaluate(before, rules, at), evaluate(after, rules, at))
                if alert is not None:
                    kind, reasons = alert
                    alerts.append({
                        "ledger_id": ledger_id, "membership_id": membership_id, "kind": kind, "reasons": reasons,
                        "at": at,
                    })
        if alerts:
            self.session.execute(insert(Alert), alerts)

    # -- runs --------------------------------------------------------------------------

    def start_run(self, trigger: str, ledger_id: str | None = None, scheduled_for: datetime | None = None) -> dict | None:
        """Create a run and one work message per ledger. For a scheduled time, returns
        None if another instance already started that time's run."""
        run_id = str(uuid.uuid4())
        values = dict(id=run_id, trigger=trigger, ledger_id=ledger_id, scheduled_for=scheduled_for,
                      status="running", ledgers_total=0, ledgers_done=0, ledgers_failed=0,
                      people_compared=0, started_at=now())
        if scheduled_for is not None:
            created = self.session.execute(
                pg_insert(Run)
                .values(**values)
                .on_conflict_do_nothing(index_elements=[Run.scheduled_for], index_where=text("scheduled_for IS NOT NULL"))
                .returning(Run.id)
            ).first()
            if created is None:
                return None
        else:
            self.session.execute(insert(Run).values(**values))
        ledger_ids = self.session.scalars(ASSIGN, {"run_id": run_id, "ledger_id": ledger_id}).all()
        self.session.execute(update(Run).where(Run.id == run_id).values(ledgers_total=len(ledger_ids)))
        add_event(
            self.session, "healthsync.run_started",
            {"run_id": run_id, "trigger": trigger, "ledger_id": ledger_id, "ledgers_total": len(ledger_ids)}, run_id,
        )
        add_events(
            self.session, "healthsync.ledger_work",
            [({"run_id": run_id, "ledger_id": lid}, lid) for lid in ledger_ids],
        )
        if not ledger_ids:
            self._finish_run_if_complete(run_id)
        return self.run_status(run_id)

    def sync_ledgers(self, run_id: str, ledger_ids: list[str], backoff: float = 1.0) -> dict[str, str]:
        """Compare the people a run assigned to these ledgers (work that arrived
        together, :mod:`services.healthsync.ledger_work`) in batches of at most 1,000
        people across them, each batch committed with its snapshots, then end the
        ledgers together. Returns each ledger's final status (done | failed | skipped)."""
        ledger_ids = list(dict.fromkeys(ledger_ids))
        failures = 0
        while True:
            try:
                batch = self._next_batch(run_id, ledger_ids)
                if batch:
                    # a batch need not wait for its WAL to reach the disk: the ledgers' end
                    # commits normally (flushing it too) before the work messages are
                    # acked, and a batch lost in a crash is compared again on redelivery
                    self.session.execute(text("SET LOCAL synchronous_commit TO off"))
                    compared = set(self._compare([(ref, enc) for _, ref, enc in batch if enc is not None], run_id))
                    taken: Counter = Counter()
                    per_ledger: Counter = Counter()
                    for ledger_id, ref, _ in batch:
                        taken[ledger_id] += 1
                        per_ledger[ledger_id] += ref in compared
                    self.session.execute(MARK_BATCH, {
                        "run_id": run_id, "ledgers": list(taken),
                        "taken": list(taken.values()), "compared": [per_ledger[lid] for lid in taken],
                    })
                    self.session.commit()
                if len(batch) < BATCH:
                    break  # nothing of these ledgers is left uncompared
            except HealthKitUnavailable:
                self.session.rollback()
                failures += 1
                if failures > self.cfg.sync_batch_retries:
                    # a ledger whose people were all compared before the Health Kit gave
                    # out is done; the others failed
                    unfinished = set(self._unfinished_ledgers(run_id, ledger_ids))
                    outcomes = self._ledgers_done(run_id, [lid for lid in ledger_ids if lid not in unfinished])
                    outcomes.update(self._ledgers_failed(run_id, [lid for lid in ledger_ids if lid in unfinished]))
                    return outcomes
                time.sleep(backoff * (2 ** (failures - 1)))
        return self._ledgers_done(run_id, ledger_ids)

    def _next_batch(self, run_id: str, ledger_ids: list[str]) -> list[tuple[str, str, bytes | None]]:
        """Up to BATCH people of these ledgers not yet compared in the run: (ledger,
        person_ref, id_number_enc or None for someone forgotten meanwhile), in order."""
        # the ledgers' rows are locked (in one order), not their people's: a second
        # delivery of a ledger waits for the first's batch, then goes on from where the
        # first got to
        self.session.execute(
            select(RunLedger.ledger_id)
            .where(RunLedger.run_id == run_id, RunLedger.ledger_id.in_(ledger_ids))
            .order_by(RunLedger.ledger_id)
            .with_for_update()
        )
        return [tuple(r) for r in self.session.execute(
            NEXT_BATCH, {"run_id": run_id, "ledgers": ledger_ids, "limit": BATCH})]

    def _unfinished_ledgers(self, run_id: str, ledger_ids: list[str]) -> list[str]:
        return list(self.session.scalars(UNFINISHED, {"run_id": run_id, "ledgers": ledger_ids}))

    def _ledgers_done(self, run_id: str, ledger_ids: list[str]) -> dict[str, str]:
        """End these ledgers in the run, in one transaction: done, with their people
        counted and their last successful sync recorded; skipped where another delivery
        ended them first."""
        if not ledger_ids:
            return {}
        t = now()
        ended = self.session.execute(
            update(RunLedger)
            .where(RunLedger.run_id == run_id, RunLedger.ledger_id.in_(ledger_ids), RunLedger.status == "pending")
            .values(status="done", finished_at=t)
            .returning(RunLedger.ledger_id, RunLedger.people)
        ).all()
        outcomes = {lid: "skipped" for lid in ledger_ids}
        if not ended:  # other deliveries ended them first
            self.session.rollback()
            return outcomes
        insert_syncs = pg_insert(LedgerSync).values([
            {"ledger_id": row.ledger_id, "last_success_at": t, "last_run_id": run_id, "last_status": "done"}
            for row in ended
        ])
        self.session.execute(
            insert_syncs.on_conflict_do_update(
                index_elements=[LedgerSync.ledger_id],
                set_={"last_success_at": t, "last_run_id": run_id, "last_status": "done"},
            )
        )
        # announced with the relay's next round (within a second), not woken for: a
        # run's ledgers end by the thousand and nothing here waits for the news
        add_events(self.session, "healthsync.ledger_synced", [
            ({"run_id": run_id, "ledger_id": row.ledger_id, "status": "done", "people": row.people}, row.ledger_id)
            for row in ended
        ], wake=False)
        near_the_end = self._pending_ledgers(run_id) <= FINISH_CHECK_BELOW
        self.session.commit()
        if near_the_end:
            self._finish_run_if_complete(run_id)
        outcomes.update({row.ledger_id: "done" for row in ended})
        return outcomes

    def _ledgers_failed(self, run_id: str, ledger_ids: list[str]) -> dict[str, str]:
        """The Health Kit kept failing: these ledgers are failed in this run, in one
        transaction; their members' snapshots not checked since the run started keep
        their last good values and are flagged stale since now. Skipped where another
        delivery ended them first."""
        if not ledger_ids:
            return {}
        t = now()
        ended = self.session.execute(
            update(RunLedger)
            .where(RunLedger.run_id == run_id, RunLedger.ledger_id.in_(ledger_ids), RunLedger.status == "pending")
            .values(status="failed", finished_at=t, error="health_kit_unavailable")
            .returning(RunLedger.ledger_id, RunLedger.people)
        ).all()
        outcomes = {lid: "skipped" for lid in ledger_ids}
        if not ended:
            self.session.rollback()
            return outcomes
        failed = [row.ledger_id for row in ended]
        self.session.execute(
            text(
                """
                UPDATE healthsync.snapshots s SET stale_since = :t
                WHERE s.stale_since IS NULL
                  AND s.person_ref IN (SELECT person_ref FROM healthsync.members
                                       WHERE ledger_id = ANY(CAST(:ledgers AS text[])))
                  AND s.checked_at < (SELECT started_at FROM healthsync.runs WHERE id = :run_id)
                """
            ),
            {"t": t, "ledgers": failed, "run_id": run_id},
        )
        self.session.execute(
            pg_insert(LedgerSync)
            .values([{"ledger_id": lid, "last_success_at": None, "last_run_id": run_id, "last_status": "failed"}
                     for lid in failed])
            .on_conflict_do_update(
                index_elements=[LedgerSync.ledger_id], set_={"last_run_id": run_id, "last_status": "failed"}
            )
        )
        add_events(self.session, "healthsync.ledger_synced", [
            ({"run_id": run_id, "ledger_id": row.ledger_id, "status": "failed", "people": row.people}, row.ledger_id)
            for row in ended
        ])
        self.session.commit()
        self._finish_run_if_complete(run_id)
        log.warning("%d ledger(s) failed in run %s: the Health Kit is unavailable", len(failed), run_id)
        outcomes.update({lid: "failed" for lid in failed})
        return outcomes

    def _pending_ledgers(self, run_id: str) -> int:
        """How many ledgers of the run are pending, counted up to FINISH_CHECK_BELOW + 1
        (counting them all after every ledger would cost a run quadratic time)."""
        pending = (
            select(RunLedger.ledger_id)
            .where(RunLedger.run_id == run_id, RunLedger.status == "pending")
            .limit(FINISH_CHECK_BELOW + 1)
            .subquery()
        )
        return self.session.scalar(select(func.count()).select_from(pending))

    def finish_complete_runs(self) -> int:
        """The safety net behind the end-of-run check: any running run with no pending
        ledger is finished (e.g. after more ledgers than FINISH_CHECK_BELOW ended at once)."""
        running = self.session.scalars(select(Run.id).where(Run.status == "running")).all()
        for run_id in running:
            self._finish_run_if_complete(run_id)
        return len(running)

    def _finish_run_if_complete(self, run_id: str) -> None:
        """After a ledger's end is committed: if no ledger of the run is pending any more,
        the run is finished (once, whoever gets here last), its counts taken in the same
        statement as the check."""
        counts = self._progress_columns(run_id)
        finished = self.session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == "running",
                   ~exists().where(RunLedger.run_id == run_id, RunLedger.status == "pending"))
            .values(status="finished", finished_at=now(), **counts)
            .returning(Run.ledgers_done, Run.ledgers_failed, Run.people_compared)
        ).first()
        if finished is not None:
            add_event(self.session, "healthsync.run_finished", {"run_id": run_id, **finished._asdict()}, run_id)
        self.session.commit()

    @staticmethod
    def _progress_columns(run_id: str) -> dict:
        """Counted from the run's ledger rows (no shared counter for workers to queue on;
        each ledger counts its people batch by batch)."""
        def ledgers(status):
            return (select(func.count()).select_from(RunLedger)
                    .where(RunLedger.run_id == run_id, RunLedger.status == status).scalar_subquery())

        compared = (select(func.coalesce(func.sum(RunLedger.people), 0)).select_from(RunLedger)
                    .where(RunLedger.run_id == run_id).scalar_subquery())
        return {"ledgers_done": ledgers("done"), "ledgers_failed": ledgers("failed"), "people_compared": compared}

    def _progress(self, run_id: str) -> dict:
        return self.session.execute(select(*[c.label(k) for k, c in self._progress_columns(run_id).items()])).one()._asdict()

    def run_status(self, run_id: str, person_ref: str | None = None) -> dict:
        """A run's progress. With ``person_ref`` (a request from the gateway), a ledger's
        run is visible to its admins, a run of every ledger to any admin."""
        run = self.session.get(Run, _uuid(run_id, "run"))
        if run is None:
            raise NotFound("No such run.")
        if person_ref is not None:
            if run.ledger_id is not None:
                self.require_admin(run.ledger_id, person_ref)
            elif not self.session.scalar(select(exists().where(
                LedgerAdmin.person_ref == person_ref, LedgerAdmin.ledger_closed_at.is_(None),
            ))):
                raise Forbidden("Only admins can see comparison runs.")
        counts = (
            {"ledgers_done": run.ledgers_done, "ledgers_failed": run.ledgers_failed,
             "people_compared": run.people_compared}
            if run.status == "finished" else self._progress(run.id)
        )
        return {
            "run_id": run.id,
            "trigger": run.trigger,
            "ledger_id": run.ledger_id,
            "status": run.status,
            "ledgers_total": run.ledgers_total,
            **counts,
            "scheduled_for": _iso(run.scheduled_for),
            "started_at": _iso(run.started_at),
            "finished_at": _iso(run.finished_at),
        }

    # -- schedule ------------------------------------------------------------------------

    def due_slot(self, at: datetime | None = None) -> datetime | None:
        """The latest configured time of day that has passed, if within the catch-up window."""
        at = at or now()
        tz = ZoneInfo(self.cfg.sync_timezone)
        local = at.astimezone(tz)
        latest = None
        for day in (local.date(), local.date() - timedelta(days=1)):
            for hhmm in self.cfg.sync_times:
                hour, minute = (int(x) for x in hhmm.split(":"))
                slot = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
                if slot <= local and (latest is None or slot > latest):
                    latest = slot
        if latest is None or local - latest > timedelta(minutes=self.cfg.schedule_catchup_minutes):
            return None
        return latest.astimezone(timezone.utc)

    def start_scheduled_run(self, at: datetime | None = None) -> dict | None:
        slot = self.due_slot(at)
        if slot is None:
            return None
        # every instance's timer gets here; one takes the lock, the unique index does the rest
        if not self.session.scalar(text("SELECT pg_try_advisory_xact_lock(hashtext('healthsync:schedule'))")):
            return None
        if self.session.scalar(select(Run.id).where(Run.scheduled_for == slot)):
            return None
        return self.start_run("schedule", scheduled_for=slot)

    # -- the Health Kit's change feed -------------------------------------------------------

    def follow_feed(self, limit: int = 1000) -> int:
        """Re-check the people whose record changed at the Health Kit since last time.
        One instance at a time reads the feed (advisory lock); the cursor moves only
        with the snapshots it caused."""
        if not self.session.scalar(text("SELECT pg_try_advisory_xact_lock(hashtext('healthsync:feed'))")):
            return 0
        cursor = self.session.get(FeedCursor, 1, with_for_update=True)
        position = cursor.position if cursor else 0
        changes, next_position = self.health_kit.changes(after=position, limit=limit)
        candidates: dict[str, None] = {}
        for change in changes:
            for id_type in ID_TYPES:
                try:
                    candidates[self.crypto.person_ref(id_type, change.id_number)] = None
                except ValueError:
                    continue
        known = self.session.scalars(select(Subject.person_ref).where(Subject.person_ref.in_(list(candidates)))).all()
        compared = self.check_people(list(known)) if known else 0
        if cursor is None:
            self.session.add(FeedCursor(id=1, position=next_position))
        else:
            cursor.position = next_position
        return compared

    # -- people and ledgers, for admins and members ------------------------------------

    def require_admin(self, ledger_id: str, person_ref: str) -> str:
        return self.admin_rules(ledger_id, person_ref)[0]

    def admin_rules(self, ledger_id: str, person_ref: str) -> tuple[str, dict]:
        """The ledger id if ``person_ref`` is one of its admins (else Forbidden; and
        LedgerClosed, to them alone, once it closed), and the ledger's rules, in one query."""
        ledger_id = _uuid(ledger_id, "ledger")
        found = admin_rules(self.session, ledger_id, person_ref)
        if found is None:
            raise Forbidden("Only this ledger's admins can do this.")
        rules, closed_at = found
        if closed_at is not None:
            raise LedgerClosed.at(closed_at)
        return ledger_id, rules

    def request_ledger_sync(self, ledger_id: str, person_ref: str) -> dict:
        ledger_id = self.require_admin(ledger_id, person_ref)
        last = self.session.scalars(
            select(Run).where(Run.ledger_id == ledger_id).order_by(Run.started_at.desc()).limit(1)
        ).first()
        if last is not None:
            wait = self.cfg.sync_min_interval_seconds - (now() - last.started_at).total_seconds()
            if wait > 0:
                raise RateLimited(
                    f"This ledger was compared moments ago; try again in {int(wait) + 1} seconds.",
                    details={"retry_after": int(wait) + 1, "run_id": last.id},
                )
        return self.start_run("admin", ledger_id=ledger_id)

    def ledger_sync_status(self, ledger_id: str, person_ref: str) -> dict:
        ledger_id = self.require_admin(ledger_id, person_ref)
        sync = self.session.get(LedgerSync, ledger_id)
        return {
            "ledger_id": ledger_id,
            "last_success_at": _iso(sync.last_success_at) if sync else None,
            "last_status": sync.last_status if sync else None,
            "last_run_id": sync.last_run_id if sync else None,
        }

    def _recheck(self, member: Member) -> dict:
        snapshot = self.session.get(Snapshot, member.person_ref, with_for_update=True)
        if snapshot is not None and snapshot.manual_check_at is not None:
            wait = self.cfg.recheck_min_interval_seconds - (now() - snapshot.manual_check_at).total_seconds()
            if wait > 0:
                raise RateLimited(
                    f"Checked moments ago; try again in {int(wait) + 1} seconds.", details={"retry_after": int(wait) + 1}
                )
        self.check_people([member.person_ref])
        self.session.execute(
            update(Snapshot).where(Snapshot.person_ref == member.person_ref).values(manual_check_at=now())
        )
        self.session.expire_all()
        rules = load_rules(self.session, member.ledger_id)
        return {"member_id": member.membership_id, **health_view(self.session.get(Snapshot, member.person_ref), rules, now())}

    def refresh_member(self, ledger_id: str, membership_id: str, person_ref: str) -> dict:
        ledger_id = self.require_admin(ledger_id, person_ref)
        member = self.session.get(Member, _uuid(membership_id, "member"))
        if member is None or member.ledger_id != ledger_id:
            raise NotFound("No such member.")
        return self._recheck(member)

    def recheck_mine(self, membership_id: str, person_ref: str) -> dict:
        member = self.session.get(Member, _uuid(membership_id, "membership"))
        if member is None or member.person_ref != person_ref:
            raise NotFound("No such membership.")
        return self._recheck(member)

    def health_of_memberships(self, ledger_id: str, person_ref: str, membership_ids: list[str]) -> dict:
        ledger_id, rules = self.admin_rules(ledger_id, person_ref)
        rows = self.session.execute(
            ledger_rows_query(ledger_id).where(Member.membership_id.in_(membership_ids))
        ).all()
        t = now()
        found = {row.membership_id: health_view(row, rules, t) for row in rows}
        # a member healthsync has not heard of yet (the event is on its way) shows as unknown
        return {mid: found.get(mid) or health_view(None, rules, t) for mid in membership_ids}

    def my_health(self, membership_id: str, person_ref: str) -> dict:
        member = self.session.get(Member, _uuid(membership_id, "membership"))
        if member is None or member.person_ref != person_ref:
            raise NotFound("No such membership.")
        return health_view(self.session.get(Snapshot, person_ref), load_rules(self.session, member.ledger_id), now())

    def forget_old_runs(self, keep_days: int) -> int:
        """Run history (runs and their ledgers) is kept ``keep_days`` days; the people
        given to each ledger's work only ``RUN_PEOPLE_KEEP``: a run needs them while it
        runs, and they are the bulk of its history."""
        t = now()
        people_kept = min(RUN_PEOPLE_KEEP, timedelta(days=keep_days))
        people_gone = select(Run.id).where(Run.status == "finished", Run.finished_at < t - people_kept)
        self.session.execute(
            update(RunLedger)
            .where(RunLedger.run_id.in_(people_gone), RunLedger.assigned.is_not(None))
            .values(assigned=None)
        )
        old = select(Run.id).where(Run.status == "finished", Run.finished_at < t - timedelta(days=keep_days))
        ids = self.session.scalars(old).all()
        if ids:
            self.session.execute(delete(RunLedger).where(RunLedger.run_id.in_(ids)))
            self.session.execute(delete(Run).where(Run.id.in_(ids)))
        return len(ids)
