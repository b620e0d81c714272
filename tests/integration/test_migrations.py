"""Each service's migrations build exactly the schema its models describe, on a fresh
PostgreSQL database, and can be applied twice (as every `make run` does)."""

from __future__ import annotations

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from shared.migrate import SERVICES_WITH_SCHEMA, upgrade_all
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


@pytest.mark.parametrize("service", SERVICES_WITH_SCHEMA)
def test_migrations_match_the_models(migrated, service):
    metadata = importlib.import_module(f"services.{service}.models").Base.metadata
    with migrated.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_schemas": True,
                "include_name": lambda name, type_, parent: (
                    name == metadata.schema if type_ == "schema" else name != "alembic_version"
                ),
            },
        )
        diff = compare_metadata(context, metadata)
    assert diff == []
