"""``shared.db.compiled_once``: an ``INSERT … ON CONFLICT`` compiled once runs from
SQLAlchemy's statement cache, with the same effect and typed rows, where the same
statement built per call is compiled per call."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine.interfaces import CacheStats

from shared.db import compiled_once, make_engine

metadata = sa.MetaData(schema="compiled_once_test")
things = sa.Table(
    "things", metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("secret", sa.LargeBinary, nullable=False),
    sa.Column("seen", sa.Integer, nullable=False),
)
_new = insert(things)
UPSERT = compiled_once(
    _new.values(key=sa.bindparam("key"), secret=sa.bindparam("secret"), seen=1)
    .on_conflict_do_update(index_elements=[things.c.key], set_={"secret": _new.excluded.secret, "seen": things.c.seen + 1})
    .returning(things.c.key, things.c.secret, things.c.seen),
    things.c.key, things.c.secret, things.c.seen,
)
ADD_IF_NEW = compiled_once(
    insert(things).values(key=sa.bindparam("key"), secret=sa.bindparam("secret"), seen=1)
    .on_conflict_do_nothing().returning(things.c.key),
    things.c.key,
)


def test_an_on_conflict_insert_compiled_once_runs_from_the_cache_with_the_same_effect(database_url):
    engine = make_engine(database_url, pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE SCHEMA compiled_once_test"))
            metadata.create_all(conn)
        with engine.begin() as conn:
            outcomes = []
            for secret in (b"\x00one", b"\x01two", b"\x02three"):
                result = conn.execute(UPSERT, {"key": "a", "secret": secret})
                outcomes.append(result.context.cache_hit)
                row = result.one()
            assert outcomes[1:] == [CacheStats.CACHE_HIT] * 2
            assert row == ("a", b"\x02three", 3)  # typed: bytes come back as bytes
            assert isinstance(row.secret, bytes)

            assert conn.execute(ADD_IF_NEW, {"key": "b", "secret": b"b"}).all() == [("b",)]
            assert conn.execute(ADD_IF_NEW, {"key": "b", "secret": b"other"}).all() == []
            assert conn.execute(sa.select(things.c.secret).where(things.c.key == "b")).scalar() == b"b"

            # why the helper exists: built per call, SQLAlchemy 2.0 cannot cache it
            per_call = insert(things).values(key="c", secret=b"c", seen=1).on_conflict_do_nothing()
            for _ in range(2):
                assert conn.execute(per_call).context.cache_hit == CacheStats.NO_CACHE_KEY
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA IF EXISTS compiled_once_test CASCADE"))
        engine.dispose()


def test_a_parameter_the_dialect_casts_is_cast_once_and_keeps_its_type(database_url):
    # psycopg2's dialect renders JSONB parameters as ``%(p)s::JSONB``; compiled once, the
    # text must keep the name bound and the cast single
    from sqlalchemy.dialects.postgresql import JSONB

    docs = sa.Table("docs", sa.MetaData(), sa.Column("body", JSONB, nullable=False))
    add = compiled_once(docs.insert().inline().values(body=sa.bindparam("body")))
    sql = str(add.compile(dialect=make_engine(database_url).dialect))
    assert sql.count("::JSONB") == 1, sql
    engine = make_engine(database_url, pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TEMPORARY TABLE docs (body jsonb NOT NULL)"))
            conn.execute(add, {"body": {"名": "张伟", "n": 1}})
            assert conn.execute(sa.text("SELECT body FROM docs")).scalar_one() == {"名": "张伟", "n": 1}
    finally:
        engine.dispose()
