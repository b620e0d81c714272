"""The org service's tables (PostgreSQL schema ``org``): ledgers, their admins and the
per-ledger data keys that encrypt the admins' personal data."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.outbox import infrastructure_tables

SCHEMA = "org"


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


outbox, handled_events = infrastructure_tables(Base.metadata)


class Ledger(Base):
    __tablename__ = "ledgers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_name: Mapped[str] = mapped_column(String(60))
    org_address: Mapped[str] = mapped_column(String(120))
    # pending → active → closed; pending → rejected rows are deleted at once
    status: Mapped[str] = mapped_column(String(16), default="pending")
    qr_version: Mapped[int] = mapped_column(Integer, default=1)
    member_cap: Mapped[int] = mapped_column(Integer, default=10000, server_default="10000")
    owner_challenge_id: Mapped[str] = mapped_column(String(36), index=True)
    # the SMS re-confirmation that will close the ledger, while one is pending
    close_challenge_id: Mapped[str | None] = mapped_column(String(36))
    # the SMS re-confirmation that will hand ownership to a co-admin, while pending
    transfer_challenge_id: Mapped[str | None] = mapped_column(String(36))
    transfer_to_admin_id: Mapped[str | None] = mapped_column(String(36))
    # optional last day (Asia/Shanghai) of a time-limited ledger; it closes itself after
    ends_on: Mapped[date | None] = mapped_column(Date)
    # 防疫要求, see shared.health.DEFAULT_RULES
    max_test_age_hours: Mapped[int | None] = mapped_column(Integer, default=72, server_default="72")
    min_vaccination: Mapped[str | None] = mapped_column(String(16))
    require_green_code: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    popup_is_abnormal: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Admin(Base):
    __tablename__ = "admins"
    __table_args__ = (UniqueConstraint("ledger_id", "person_ref"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    ledger_id: Mapped[str] = mapped_column(ForeignKey("ledgers.id", ondelete="CASCADE"), index=True)
    person_ref: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))  # owner | co_admin
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | active
    challenge_id: Mapped[str | None] = mapped_column(String(36), index=True)
    id_type: Mapped[str] = mapped_column(String(20))
    phone_index: Mapped[str] = mapped_column(String(64), index=True)
    # encrypted under the ledger's data key
    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    id_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    phone_enc: Mapped[bytes] = mapped_column(LargeBinary)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LedgerKey(Base):
    """The ledger's data key, wrapped by the master key. Deleting it makes every
    ciphertext of the ledger unreadable."""

    __tablename__ = "ledger_keys"

    ledger_id: Mapped[str] = mapped_column(ForeignKey("ledgers.id", ondelete="CASCADE"), primary_key=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
