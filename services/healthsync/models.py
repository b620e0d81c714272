"""The healthsync service's tables (PostgreSQL schema ``healthsync``). Health snapshots and runs arrive with
the comparison runs; for now the schema holds the service's outbox and handled events."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from shared.outbox import infrastructure_tables

SCHEMA = "healthsync"


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


outbox, handled_events = infrastructure_tables(Base.metadata)
