"""``shared.db.array_literal``: what PostgreSQL reads back is what was sent, whatever
the text holds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg2

from shared.db import array_literal
from tests.conftest import ADMIN_DATABASE_URL


def _read(literal: str, type_: str):
    conn = psycopg2.connect(ADMIN_DATABASE_URL)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT CAST(%s AS {type_})", (literal,))
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_text_comes_back_as_sent():
    values = ["plain", "", "NULL", None, 'say "hi"', "back\\slash", "a,b", "{braces}", " padded ", "居家观察", "弹窗\t'x'"]
    assert _read(array_literal(values), "text[]") == values


def test_datetimes_keep_their_instant():
    shanghai = timezone(timedelta(hours=8))
    values = [datetime(2026, 12, 2, 0, 30, tzinfo=shanghai), None, datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)]
    assert _read(array_literal(values), "timestamptz[]") == values


def test_numbers_and_an_empty_list():
    assert _read(array_literal([1, 0, -7]), "integer[]") == [1, 0, -7]
    assert _read(array_literal([]), "text[]") == []
