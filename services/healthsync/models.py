"""The healthsync service's tables (PostgreSQL schema ``healthsync``).

- a projection of active memberships (ledger, membership, person ref), fed by member's
  events, and of each ledger's admins, fed by org's, so runs and health queries need no
  RPC into other services;
- ``subjects``: the ID number each person is known by at the Health Kit, encrypted
  (it reaches healthsync only sealed, in ``member.joined``);
- ``snapshots``: each person's last known health record and when it was checked;
- ``runs``, ``run_ledgers``: comparison runs and their progress per ledger, with the
  people given to each ledger's work (each person to one ledger: compared once a run).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.outbox import infrastructure_tables

SCHEMA = "healthsync"


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


outbox, handled_events = infrastructure_tables(Base.metadata)


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (
        Index("ix_members_ledger_person", "ledger_id", "person_ref"),
        # a person's memberships; and a run's start reads every person's first ledger
        # from it in order (no sort of every membership)
        Index("ix_members_person_ledger", "person_ref", "ledger_id"),
    )

    membership_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    ledger_id: Mapped[str] = mapped_column(String(36))
    person_ref: Mapped[str] = mapped_column(String(64))
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LedgerAdmin(Base):
    __tablename__ = "ledger_admins"
    __table_args__ = (PrimaryKeyConstraint("ledger_id", "person_ref"),)

    ledger_id: Mapped[str] = mapped_column(String(36))
    person_ref: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))
    # when the ledger closed: its admins are kept, to be told so (LedgerClosed), where
    # anyone else is refused as for any ledger not theirs
    ledger_closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Subject(Base):
    __tablename__ = "subjects"

    person_ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    id_type: Mapped[str] = mapped_column(String(20))
    # under the master key, AAD = person_ref
    id_number_enc: Mapped[bytes] = mapped_column(LargeBinary)


class Snapshot(Base):
    __tablename__ = "snapshots"

    person_ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    code_status: Mapped[str] = mapped_column(String(8))  # green | yellow | red | unknown
    popup: Mapped[str | None] = mapped_column(String(32))
    last_test_sampled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_test_result: Mapped[str | None] = mapped_column(String(8))
    pending_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    vaccination: Mapped[str] = mapped_column(String(16))
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the Health Kit's version of the record (its updated_at), where it gives one: an
    # older record never overwrites a newer one
    record_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # set when a check failed after the last good one; cleared by the next good one
    stale_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_run_id: Mapped[str | None] = mapped_column(String(36))
    manual_check_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # the record before the latest check (set from the row the check's upsert locked):
    # what a change is announced from; before_checked_at is None after a first check
    before_code_status: Mapped[str | None] = mapped_column(String(8))
    before_popup: Mapped[str | None] = mapped_column(String(32))
    before_last_test_sampled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    before_last_test_result: Mapped[str | None] = mapped_column(String(8))
    before_vaccination: Mapped[str | None] = mapped_column(String(16))
    before_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        # one run per scheduled time, however many instances see the time come
        Index("uq_run_scheduled_for", "scheduled_for", unique=True, postgresql_where=text("scheduled_for IS NOT NULL")),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    trigger: Mapped[str] = mapped_column(String(16))  # schedule | rpc | bus | admin | cli
    ledger_id: Mapped[str | None] = mapped_column(String(36), index=True)  # None: every ledger
    scheduled_for: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))  # running | finished
    ledgers_total: Mapped[int] = mapped_column(Integer, default=0)
    ledgers_done: Mapped[int] = mapped_column(Integer, default=0)
    ledgers_failed: Mapped[int] = mapped_column(Integer, default=0)
    people_compared: Mapped[int] = mapped_column(BigInteger, default=0)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RunLedger(Base):
    __tablename__ = "run_ledgers"
    __table_args__ = (
        PrimaryKeyConstraint("run_id", "ledger_id"),
        # "is any ledger of this run still pending?" after every ledger
        Index("ix_run_ledgers_pending", "run_id", postgresql_where=text("status = 'pending'")),
    )

    run_id: Mapped[str] = mapped_column(String(36))
    ledger_id: Mapped[str] = mapped_column(String(36), index=True)
    status: Mapped[str] = mapped_column(String(16))  # pending | done | failed
    people: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(String(120))
    # the people given to this ledger's work in the run (each person to one of their
    # ledgers), in order, and how many of them it has gone through (moved in the
    # transaction that writes a batch's snapshots); assigned is forgotten a day after the run
    assigned: Mapped[list[str] | None] = mapped_column(ARRAY(String(64)))
    gone_through: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class LedgerSync(Base):
    """Each ledger's last successful comparison."""

    __tablename__ = "ledger_syncs"

    ledger_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_run_id: Mapped[str | None] = mapped_column(String(36))
    last_status: Mapped[str | None] = mapped_column(String(16))


class LedgerRules(Base):
    """The ledger's rules (from org.rules_changed); a ledger without a row uses
    ``shared.health.DEFAULT_RULES``."""

    __tablename__ = "ledger_rules"

    ledger_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_name: Mapped[str] = mapped_column(String(60), default="")
    max_test_age_hours: Mapped[int | None] = mapped_column(Integer)
    min_vaccination: Mapped[str | None] = mapped_column(String(16))
    require_green_code: Mapped[bool] = mapped_column(Boolean)
    popup_is_abnormal: Mapped[bool] = mapped_column(Boolean)


class Alert(Base):
    """A member became abnormal, got a new reason to be while abnormal, or stopped
    being, in a ledger."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_ledger_at", "ledger_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    ledger_id: Mapped[str] = mapped_column(String(36))
    membership_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(20))  # became_abnormal | worsened | back_to_normal
    reasons: Mapped[list] = mapped_column(JSONB)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AlertRead(Base):
    __tablename__ = "alert_reads"
    __table_args__ = (PrimaryKeyConstraint("alert_id", "person_ref"),)

    alert_id: Mapped[int] = mapped_column(BigInteger)
    person_ref: Mapped[str] = mapped_column(String(64))


class DigestSubscription(Base):
    """An admin who wants one SMS digest of new alerts per day at most."""

    __tablename__ = "digest_subscriptions"
    __table_args__ = (PrimaryKeyConstraint("ledger_id", "person_ref"),)

    ledger_id: Mapped[str] = mapped_column(String(36))
    person_ref: Mapped[str] = mapped_column(String(64))
    last_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class FeedCursor(Base):
    """How far the Health Kit change feed has been read."""

    __tablename__ = "feed_cursor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)
