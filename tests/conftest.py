"""Fixtures shared by every test layer.

Integration and end-to-end tests use the real PostgreSQL and RabbitMQ on this
machine, isolated per run: a fresh database (and, for the bus, a fresh vhost) with a
random name, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid

import psycopg2
import pytest
from sqlalchemy.engine import make_url

ADMIN_DATABASE_URL = os.environ.get(
    "TEST_ADMIN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _admin_conn():
    conn = psycopg2.connect(ADMIN_DATABASE_URL)
    conn.autocommit = True
    return conn


def create_database() -> str:
    """Create an empty database with a random name and return its URL."""
    name = f"tuantibu_test_{uuid.uuid4().hex[:10]}"
    conn = _admin_conn()
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return make_url(ADMIN_DATABASE_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    name = make_url(url).database
    conn = _admin_conn()
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


@pytest.fixture(scope="session")
def database_url():
    """A fresh, empty PostgreSQL database for this test session."""
    url = create_database()
    yield url
    drop_database(url)
