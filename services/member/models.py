"""The member service's tables (PostgreSQL schema ``member``). Memberships arrive with
the join flow; for now the schema holds the service's outbox and handled events."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from shared.outbox import infrastructure_tables

SCHEMA = "member"


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


outbox, handled_events = infrastructure_tables(Base.metadata)
