"""Settings: safe defaults in dev, no defaulted secrets in production."""

import base64
import os

import pytest

from shared.config import ConfigError, load_settings

KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()
PRODUCTION = {
    "TUANTIBU_MODE": "production",
    "TUANTIBU_MASTER_KEYS": f"k1:{KEY}",
    "BLIND_INDEX_KEY": KEY,
    "TRANSIT_SECRET": KEY,
    "QR_SIGNING_KEY": KEY,
    "CODE_HMAC_KEY": KEY,
}


def test_dev_mode_has_the_dev_sms_outbox_on():
    assert load_settings({}).dev_sms_enabled is True


def test_production_turns_the_dev_sms_outbox_off_by_default():
    assert load_settings(PRODUCTION).dev_sms_enabled is False
    assert load_settings({**PRODUCTION, "DEV_SMS_ENABLED": "true"}).dev_sms_enabled is True


@pytest.mark.parametrize("missing", ["TUANTIBU_MASTER_KEYS", "BLIND_INDEX_KEY", "TRANSIT_SECRET", "QR_SIGNING_KEY", "CODE_HMAC_KEY"])
def test_production_refuses_to_start_without_a_secret(missing):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        load_settings(env)


def test_master_keys_rotate_by_id():
    other = base64.urlsafe_b64encode(os.urandom(32)).decode()
    s = load_settings({**PRODUCTION, "TUANTIBU_MASTER_KEYS": f"k1:{KEY},k2:{other}"})
    assert s.master_key_id == "k2" and set(s.master_keys) == {"k1", "k2"}
    with pytest.raises(ConfigError):
        load_settings({**PRODUCTION, "TUANTIBU_MASTER_KEY_ID": "k9"})


def test_a_short_key_is_refused():
    with pytest.raises(ConfigError, match="32 bytes"):
        load_settings({**PRODUCTION, "BLIND_INDEX_KEY": base64.urlsafe_b64encode(b"short").decode()})


def test_an_empty_schedule_turns_scheduled_runs_off():
    assert load_settings({"SYNC_TIMES": ""}).sync_times == ()
    assert load_settings({}).sync_times == ("06:00", "09:00", "12:00", "16:00")


def test_a_pool_of_no_connections_is_refused():
    assert load_settings({}).db_pool_size == 10
    assert load_settings({"DB_POOL_SIZE": "4"}).db_pool_size == 4
    with pytest.raises(ConfigError, match="DB_POOL_SIZE must be 1 or more, got 0"):
        load_settings({"DB_POOL_SIZE": "0"})
