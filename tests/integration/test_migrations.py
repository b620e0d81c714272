"""Each service's migrations build exactly the schema its models describe, on a fresh
PostgreSQL database, can be applied twice (as every `make run` does), and go down to
nothing and up again."""

from __future__ import annotations

import importlib

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from shared.migrate import SERVICES_WITH_SCHEMA, alembic_config, upgrade_all
from tests.conftest import create_database, drop_database


@pytest.fixture(scope="module")
def migrated():
    url = create_database()
    upgrade_all(url)
    upgrade_all(url)  # idempotent: already at head
    engine = create_engine(url)
    yield engine
    engine.dispose()
    drop_database(url)


def _differences(engine, service: str) -> list:
    metadata = importlib.import_module(f"services.{service}.models").Base.metadata
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_schemas": True,
                "include_name": lambda name, type_, parent: (
                    name == metadata.schema if type_ == "schema" else name != "alembic_version"
                ),
            },
        )
        return compare_metadata(context, metadata)


@pytest.mark.parametrize("service", SERVICES_WITH_SCHEMA)
def test_migrations_match_the_models(migrated, service):
    assert _differences(migrated, service) == []


@pytest.mark.parametrize("service", SERVICES_WITH_SCHEMA)
def test_migrations_go_down_to_nothing_and_up_again(service):
    url = create_database()
    engine = create_engine(url)
    try:
        cfg = alembic_config(service, url)
        command.upgrade(cfg, "head")
        command.downgrade(cfg, "base")
        with engine.connect() as conn:
            left = conn.execute(text(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = :schema AND table_name <> 'alembic_version'"
            ), {"schema": service}).scalars().all()
        assert left == []
        command.upgrade(cfg, "head")
        assert _differences(engine, service) == []
    finally:
        engine.dispose()
        drop_database(url)
