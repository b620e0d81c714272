"""The verify service's tables (PostgreSQL schema ``verify``): verification challenges
with their hashed SMS codes, the SMS send log behind the daily caps, the phone → person
index used to log in, and sessions (stored hashed)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Index, Integer, LargeBinary, MetaData, String, false, func, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.outbox import infrastructure_tables

SCHEMA = "verify"


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


outbox, handled_events = infrastructure_tables(Base.metadata)


class Challenge(Base):
    __tablename__ = "challenges"
    __table_args__ = (
        # details the Health Kit disagreed with, counted per ID number and per client
        # address over the last day (after a few, rejections stop naming the field)
        Index("ix_challenges_person_mismatches", "person_ref", "created_at", postgresql_where=text("status = 'rejected'")),
        Index("ix_challenges_client_mismatches", "client", "created_at", postgresql_where=text("status = 'rejected'")),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(24))
    subject_id: Mapped[str | None] = mapped_column(String(36))
    person_ref: Mapped[str | None] = mapped_column(String(64))
    phone_index: Mapped[str] = mapped_column(String(64), index=True)
    # encrypted under the master key (AAD: the challenge id), kept only while a code
    # can still be resent; cleared when the challenge ends
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    masked_phone: Mapped[str] = mapped_column(String(16))
    # code_sent → verified | failed; rejected at once when the Health Kit disagrees
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    # what a re-confirmation is for, as its SMS says it ("关闭团体簿「…」"): someone asked
    # to read out a code must be able to tell that it closes a ledger
    act: Mapped[str | None] = mapped_column(String(100))
    code_digest: Mapped[str | None] = mapped_column(String(64))
    code_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    code_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    sends: Mapped[int] = mapped_column(Integer, default=0)
    client: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SmsSend(Base):
    """One SMS sent, for the daily caps per phone and per client address.

    A code that was confirmed no longer counts against its client address: people
    joining from one office network or carrier NAT share an address, and each confirms
    their own code, while someone sending codes to phones they do not hold cannot."""

    __tablename__ = "sms_sends"
    __table_args__ = (
        # the daily caps count by phone (every code) and by client (codes not confirmed)
        # over the last day
        Index("ix_sms_sends_phone_at", "phone_index", "sent_at"),
        Index("ix_sms_sends_client_unconfirmed", "client", "sent_at", postgresql_where=text("NOT confirmed")),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    phone_index: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    challenge_id: Mapped[str | None] = mapped_column(String(36))
    confirmed: Mapped[bool] = mapped_column(Boolean, server_default=false())


class Identity(Base):
    """A person who passed verification, found by phone when they log in again."""

    __tablename__ = "identities"

    person_ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    phone_index: Mapped[str] = mapped_column(String(64), index=True)
    phone_enc: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class UserSession(Base):
    __tablename__ = "sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_ref: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
