"""Database migrations: each service owns one PostgreSQL schema and its own alembic
migrations (``services/<service>/migrations``). ``python -m shared.migrate`` applies
them all (``make run`` and the test setup do)."""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, create_engine, text

from shared.config import settings

ROOT = Path(__file__).resolve().parent.parent
SERVICES_WITH_SCHEMA = ("org", "verify", "member", "healthsync")


def alembic_config(service: str, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "services" / service / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["service"] = service
    return cfg


def upgrade_all(url: str | None = None) -> None:
    url = url or settings().database_url
    for service in SERVICES_WITH_SCHEMA:
        command.upgrade(alembic_config(service, url), "head")


def run_env(metadata: MetaData) -> None:
    """The body of every service's ``migrations/env.py``."""
    schema = metadata.schema
    url = context.config.get_main_option("sqlalchemy.url")
    engine = create_engine(url)
    with engine.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        connection.commit()
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=True,
            include_name=lambda name, type_, parent: type_ != "schema" or name == schema,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if __name__ == "__main__":
    upgrade_all(sys.argv[1] if len(sys.argv) > 1 else None)
    print("migrations applied")
