"""Master key rotation on the real PostgreSQL: after ``shared.rekey`` re-encrypts, the
old master key can be removed and everything still opens, through the services' own
code; a value under a key nobody has any more is reported, not lost further."""

from __future__ import annotations

import base64
import os
import uuid

import psycopg2
import pytest
from sqlalchemy import LargeBinary, create_engine, select
from sqlalchemy.orm import Session

from services.healthsync.models import Base as HealthsyncBase
from services.healthsync.models import Subject
from services.member.memberships import _open_ledger, learn_ledger
from services.member.models import Base as MemberBase
from services.org.ledgers import _ledger_cipher, register_ledger
from services.org.models import Admin
from services.org.models import Base as OrgBase
from services.verify.models import Base as VerifyBase
from services.verify.models import Challenge, Identity
from shared.config import load_settings
from shared.crypto import Crypto
from shared.rekey import PROTECTED, key_usage, reencrypt, verdict
from tests.e2e.flows import application
from tests.integration.support import migrated_database
from tests.people import person

KEYS = {name: base64.urlsafe_b64encode(os.urandom(32)).decode() for name in ("k0", "k1", "k2")}


def crypto(*key_ids: str) -> Crypto:
    """Keys as configured: the last one listed is current."""
    return Crypto(load_settings({"TUANTIBU_MASTER_KEYS": ",".join(f"{k}:{KEYS[k]}" for k in key_ids)}))


@pytest.fixture(scope="module")
def database_url():
    with migrated_database() as url:
        yield url


def test_after_rekeying_the_old_master_key_can_go(database_url):
    old, rotated, new_only = crypto("k1"), crypto("k1", "k2"), crypto("k2")
    p = person("秦测试")
    ref = old.person_ref("resident_id", p.id_number)
    engine = create_engine(database_url)
    with Session(engine) as s:  # written before the rotation, under k1
        ledger_id = register_ledger(s, old, application(p))["ledger_id"]
        learn_ledger(s, old, {"ledger_id": ledger_id, "org_name": "朝阳区第一小学", "qr_version": 1, "member_cap": 10})
        s.add(Subject(person_ref=ref, id_type="resident_id", id_number_enc=old.master.encrypt_text(p.id_number, aad=ref.encode())))
        s.add(Identity(person_ref=ref, phone_index=old.phone_index(p.phone), phone_enc=old.master.encrypt_text(p.phone, aad=ref.encode())))
        challenge_id = str(uuid.uuid4())
        s.add(Challenge(
            id=challenge_id, purpose="login", person_ref=ref, phone_index=old.phone_index(p.phone),
            phone_enc=old.master.encrypt_text(p.phone, aad=challenge_id.encode()), masked_phone="138****0000",
            status="code_sent", failed_attempts=0, sends=1, client="",
        ))
        lost_ref = "f" * 64  # under k0, a key no longer configured
        s.add(Subject(person_ref=lost_ref, id_type="resident_id", id_number_enc=crypto("k0").master.encrypt_text("x", aad=lost_ref.encode())))
        s.commit()

    conn = psycopg2.connect(database_url)
    try:
        usage = key_usage(conn)
        assert usage["org.ledger_keys.wrapped_key"] == {"k1": 1}
        assert usage["healthsync.subjects.id_number_enc"] == {"k0": 1, "k1": 1}
        assert "k1 still protects 5 value(s): run python -m shared.rekey --apply, then look again" in verdict(
            usage, rotated, ["k1", "k2"]
        )

        done = reencrypt(conn, rotated)
        assert done == {
            "org.ledger_keys.wrapped_key": (1, 0), "member.ledger_keys.wrapped_key": (1, 0),
            "healthsync.subjects.id_number_enc": (1, 1), "verify.identities.phone_enc": (1, 0),
            "verify.challenges.phone_enc": (1, 0),
        }
        usage = key_usage(conn)
        assert all("k1" not in by_key for by_key in usage.values())
        lines = verdict(usage, rotated, ["k1", "k2"])
        assert "k1 protects nothing: it can be removed from TUANTIBU_MASTER_KEYS" in lines
        assert "k0 is not in TUANTIBU_MASTER_KEYS, yet 1 value(s) are under it: they are unreadable" in lines
        assert reencrypt(conn, rotated)["verify.identities.phone_enc"] == (0, 0)  # nothing left to do
    finally:
        conn.close()

    with Session(engine) as s:  # k1 removed: everything opens with k2 alone, the services' own way
        admin = s.scalars(select(Admin).where(Admin.ledger_id == ledger_id)).one()
        assert _ledger_cipher(s, new_only, ledger_id).decrypt_text(admin.name_enc) == p.name
        assert _open_ledger(s, new_only, ledger_id)[1] is not None
        assert new_only.master.decrypt_text(s.get(Subject, ref).id_number_enc, aad=ref.encode()) == p.id_number
        assert new_only.master.decrypt_text(s.get(Identity, ref).phone_enc, aad=ref.encode()) == p.phone
        phone_enc = s.get(Challenge, challenge_id).phone_enc
        assert new_only.master.decrypt_text(phone_enc, aad=challenge_id.encode()) == p.phone
    engine.dispose()


def test_every_encrypted_column_is_either_rekeyed_or_under_a_ledger_data_key():
    # a new column encrypted under the master key must join shared.rekey.PROTECTED, or
    # rotating the master key would leave it behind
    under_ledger_data_keys = {
        "org.admins.name_enc", "org.admins.id_number_enc", "org.admins.phone_enc",
        "member.memberships.name_enc", "member.memberships.id_number_enc", "member.memberships.phone_enc",
    }
    encrypted = {
        f"{table.fullname}.{column.name}"
        for base in (OrgBase, MemberBase, HealthsyncBase, VerifyBase)
        for table in base.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, LargeBinary)
    }
    assert encrypted == {f"{p.table}.{p.column}" for p in PROTECTED} | under_ledger_data_keys
