"""The dev SMS outbox against real PostgreSQL, and the CLI people read their codes with."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
import sqlalchemy as sa

from shared.config import load_settings
from shared.db import make_engine
from shared.sms import TEMPLATES, SmsSender, render, sms_sender
from shared.sms.dev_outbox import DevOutbox
from tests.conftest import create_database, drop_database

PHONE = "13812345678"
OTHER = "13987654321"


@pytest.fixture(scope="module")
def config(database_url):
    return load_settings({**os.environ, "DATABASE_URL": database_url})


@pytest.fixture(scope="module")
def outbox(config):
    engine = make_engine(config.database_url, pool_size=2)
    yield DevOutbox(engine, key=config.blind_index_key)
    engine.dispose()


def code_params(code: str) -> dict[str, str]:
    return {"code": code, "minutes": "5", "purpose": "加入团体簿"}


def test_send_and_read_back_by_phone(outbox):
    outbox.send(PHONE, "verification_code", code_params("246810"))
    outbox.send("+86 138-1234-5678", "verification_code", code_params("135791"))
    outbox.send(OTHER, "verification_code", code_params("999999"))

    mine = outbox.messages_for(PHONE)
    assert [m["text"] for m in mine[:2]] == [
        "【团体簿】验证码 135791，5 分钟内有效，用于加入团体簿。如非本人操作请忽略。",
        "【团体簿】验证码 246810，5 分钟内有效，用于加入团体簿。如非本人操作请忽略。",
    ]
    assert all(m["masked_phone"] == "138****5678" for m in mine)
    assert all(m["template"] == "verification_code" for m in mine)
    assert all("999999" not in m["text"] for m in mine)
    assert mine[0]["sent_at"] >= mine[1]["sent_at"]
    assert len(outbox.messages_for(PHONE, limit=1)) == 1
    assert outbox.messages_for("13600000000") == []

    latest = outbox.latest(limit=3)
    assert latest[0]["masked_phone"] == "139****4321"
    assert "999999" in latest[0]["text"]


def test_no_plaintext_phone_is_stored(outbox, database_url):
    outbox.send(PHONE, "test_reminder", {"org_name": "朝阳区某某社区"})
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT m::text FROM sms_dev.messages m")).scalars().all()
        columns = conn.execute(
            sa.text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'sms_dev' AND table_name = 'messages'"
            )
        ).scalars().all()
    engine.dispose()
    assert rows
    for row in rows:
        for secret in (PHONE, OTHER, "12345678", "87654321"):
            assert secret not in row
    assert "phone" not in columns
    assert {"phone_key", "masked_phone", "template", "text", "sent_at"} <= set(columns)


def test_phone_key_is_keyed(outbox, config):
    other = DevOutbox(outbox.engine, key=b"\x01" * 32)
    assert outbox.phone_key(PHONE) != other.phone_key(PHONE)
    assert outbox.phone_key(PHONE) == outbox.phone_key("+86 138 1234 5678")
    assert len(outbox.phone_key(PHONE)) == 64
    # Messages written under one key are not found under another.
    assert other.messages_for(PHONE) == []


def test_bad_input_is_refused_without_storing(outbox):
    before = len(outbox.latest(limit=1000))
    with pytest.raises(ValueError, match="unknown SMS template"):
        outbox.send(PHONE, "no_such_template", {})
    with pytest.raises(ValueError, match="missing minutes, purpose"):
        outbox.send(PHONE, "verification_code", {"code": "123456"})
    with pytest.raises(ValueError, match="unexpected extra"):
        outbox.send(PHONE, "verification_code", {**code_params("123456"), "extra": "x"})
    with pytest.raises(ValueError) as excinfo:
        outbox.send("12345", "verification_code", code_params("123456"))
    assert "12345" not in str(excinfo.value)
    assert len(outbox.latest(limit=1000)) == before


def test_templates_render():
    assert "verification_code" in TEMPLATES
    assert render("verification_code", code_params("000111")).startswith("【团体簿】验证码 000111，")


def test_sms_sender_gives_the_dev_outbox(config):
    sender = sms_sender(config)
    assert isinstance(sender, DevOutbox)
    assert isinstance(sender, SmsSender)
    assert sms_sender(config) is sender
    sender.send(OTHER, "verification_code", code_params("424242"))
    assert "424242" in sender.messages_for(OTHER)[0]["text"]
    with sender.engine.connect() as conn:  # one statement per send or read: no BEGIN/COMMIT around it
        assert conn.connection.dbapi_connection.autocommit


def test_cli_prints_masked_messages(outbox, database_url):
    outbox.send(PHONE, "verification_code", code_params("777888"))
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, "-m", "shared.sms", "--phone", PHONE, "--limit", "2"],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    )
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    assert "138****5678" in lines[-1] and "777888" in lines[-1]
    assert PHONE not in result.stdout
    everyone = subprocess.run(
        [sys.executable, "-m", "shared.sms"],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    )
    assert "777888" in everyone.stdout


def test_services_starting_together_create_the_outbox_store_once_without_errors():
    # each service makes its own sender on an autocommit engine; the store's creation
    # must still be one locked transaction, or concurrent CREATEs collide
    url = create_database()
    try:
        for _ in range(3):
            engines = [make_engine(url, pool_size=1, autocommit=True) for _ in range(8)]
            with engines[0].connect() as conn:
                conn.execute(sa.text("DROP SCHEMA IF EXISTS sms_dev CASCADE"))
            barrier, errors = threading.Barrier(len(engines)), []

            def start(engine, barrier=barrier, errors=errors):
                barrier.wait()
                try:
                    DevOutbox(engine, key=b"k" * 32)
                except Exception as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)

            threads = [threading.Thread(target=start, args=(e,)) for e in engines]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            for e in engines:
                e.dispose()
            assert not errors
    finally:
        drop_database(url)
