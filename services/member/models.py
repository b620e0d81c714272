"""The member service's tables (PostgreSQL schema ``member``): memberships with their
encrypted personal data, the per-ledger data keys, and a projection of the ledgers and
their admins (fed by org's events) so joining and authorisation need no RPC to org."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.outbox import infrastructure_tables

SCHEMA = "member"


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


outbox, handled_events = infrastructure_tables(Base.metadata)


class LedgerView(Base):
    """What member knows of a ledger, from org.ledger_activated / qr_rotated /
    member_cap_changed / ledger_closed."""

    __tablename__ = "ledgers"

    ledger_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_name: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(16))  # active | closed
    qr_version: Mapped[int] = mapped_column(Integer)
    member_cap: Mapped[int] = mapped_column(Integer)
    # when the cap last changed (org.member_cap_changed): an older change delivered late is ignored
    cap_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LedgerAdmin(Base):
    __tablename__ = "ledger_admins"
    __table_args__ = (PrimaryKeyConstraint("ledger_id", "person_ref"),)

    ledger_id: Mapped[str] = mapped_column(String(36))
    person_ref: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))
    masked_name: Mapped[str] = mapped_column(String(40), default="", server_default="")
    # org's id of the admin and their masked phone (138****5678), as the owner's admins
    # list shows them: the access log records both, so two admins named 张* differ.
    # Unknown (NULL, "") for admins announced before org sent them
    admin_id: Mapped[str | None] = mapped_column(String(36))
    masked_phone: Mapped[str] = mapped_column(String(20), default="", server_default="")


class LedgerKey(Base):
    """The ledger's member-data key, wrapped by the master key; deleted when the ledger
    closes, which makes every member's stored data unreadable."""

    __tablename__ = "ledger_keys"

    ledger_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (
        # one live membership per person per ledger, whatever the concurrency
        Index(
            "uq_live_membership",
            "ledger_id",
            "person_ref",
            unique=True,
            postgresql_where=text("status IN ('pending', 'active')"),
        ),
        Index("ix_membership_ledger_status", "ledger_id", "status", "joined_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    ledger_id: Mapped[str] = mapped_column(String(36))
    # blind index of the ID number; cleared when the person leaves
    person_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    # pending → active → left | removed | closed
    status: Mapped[str] = mapped_column(String(16))
    challenge_id: Mapped[str] = mapped_column(String(36), index=True)
    id_type: Mapped[str] = mapped_column(String(20))
    # encrypted under the ledger's data key; ID and phone are deleted when the person
    # leaves, the name stays so admins see who left
    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    id_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    consent_version: Mapped[str] = mapped_column(String(32))
    consented_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    joined_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    left_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    left_reason: Mapped[str | None] = mapped_column(String(200))


class AccessRecord(Base):
    """Who viewed or exported a ledger's member data, when, and which view or filter.
    Who is written as the admin was at that moment (a removed admin's entries still
    say who they were): org's admin id, masked name and phone, and role."""

    __tablename__ = "access_log"
    __table_args__ = (Index("ix_access_ledger_at", "ledger_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    ledger_id: Mapped[str] = mapped_column(String(36))
    person_ref: Mapped[str] = mapped_column(String(64))
    admin_id: Mapped[str | None] = mapped_column(String(36))  # NULL in entries from before it was kept
    admin_name: Mapped[str] = mapped_column(String(40))  # masked, as the ledger shows it
    admin_phone: Mapped[str | None] = mapped_column(String(20))  # masked (138****5678); shown to the owner only
    role: Mapped[str] = mapped_column(String(16))
    view: Mapped[str] = mapped_column(String(40))
    filters: Mapped[dict] = mapped_column(JSONB)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Reminder(Base):
    """An SMS reminder sent to a member (at most one per member per day)."""

    __tablename__ = "reminders"
    __table_args__ = (UniqueConstraint("membership_id", "sent_on"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    ledger_id: Mapped[str] = mapped_column(String(36), index=True)
    membership_id: Mapped[str] = mapped_column(String(36))
    sent_on: Mapped[date] = mapped_column(Date)
    sent_by: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
