"""Configuration, read from the environment once, with safe defaults.

Every knob is an environment variable (listed, with its default, in README.md's
configuration table). ``TUANTIBU_MODE`` is ``dev`` (the default: demo secrets derived
from a fixed, public dev seed, the dev SMS outbox readable over HTTP) or
``production`` (every secret must be given; dev endpoints are off unless asked for).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Mapping


class ConfigError(RuntimeError):
    """Raised at start-up when a setting is missing or malformed."""


DEV_SEED = b"tuantibu-dev-only-not-a-secret"


def _dev_secret(label: str) -> bytes:
    return hmac.new(DEV_SEED, label.encode(), hashlib.sha256).digest()


def _b64key(value: str, name: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except Exception as exc:  # noqa: BLE001 - reported as a config error
        raise ConfigError(f"{name} is not valid base64") from exc
    if len(raw) != 32:
        raise ConfigError(f"{name} must decode to 32 bytes, got {len(raw)}")
    return raw


@dataclass(frozen=True)
class Settings:
    mode: str
    database_url: str
    amqp_uri: str
    gateway_address: str
    public_base_url: str
    healthkit_url: str
    healthkit_sim_address: str
    healthkit_timeout: float
    healthkit_retries: int
    sim_latency_ms: int
    sim_failure_rate: float
    dev_sms_enabled: bool
    rpc_timeout: float
    code_ttl_seconds: int
    code_max_attempts: int
    resend_cooldown_seconds: int
    sms_daily_cap_per_phone: int
    sms_daily_cap_per_client: int
    session_idle_seconds: int
    session_absolute_seconds: int
    handler_retries: int
    handler_backoff_seconds: float
    demo_residents: int
    ledger_member_cap: int
    challenge_grace_seconds: int
    sweep_interval_seconds: float
    sync_times: tuple[str, ...]
    sync_timezone: str
    schedule_check_seconds: float
    schedule_catchup_minutes: int
    sync_min_interval_seconds: int
    recheck_min_interval_seconds: int
    sync_batch_retries: int
    feed_interval_seconds: float
    digest_check_seconds: float
    run_history_days: int
    access_log_days: int
    handled_events_days: int
    challenge_days: int
    housekeeping_seconds: float
    gateway_tls_cert: str
    gateway_tls_key: str
    session_cache_seconds: float
    join_info_cache_seconds: float
    trusted_proxy_hops: int
    db_pool_size: int
    identity_mismatches_per_day: int
    identity_mismatches_per_client: int
    # secrets
    master_keys: Mapping[str, bytes] = field(repr=False)
    master_key_id: str = field(repr=False)
    blind_index_key: bytes = field(repr=False)
    transit_secret: bytes = field(repr=False)
    qr_signing_key: bytes = field(repr=False)
    code_hmac_key: bytes = field(repr=False)

    @property
    def is_dev(self) -> bool:
        return self.mode == "dev"


def _secret(env: Mapping[str, str], name: str, mode: str) -> bytes:
    value = env.get(name)
    if value:
        return _b64key(value, name)
    if mode == "production":
        raise ConfigError(f"{name} must be set in production mode (32 random bytes, base64)")
    return _dev_secret(name)


def _master_keys(env: Mapping[str, str], mode: str) -> tuple[dict[str, bytes], str]:
    """``TUANTIBU_MASTER_KEYS`` is ``id:base64key[,id:base64key...]``; the current one is
    ``TUANTIBU_MASTER_KEY_ID`` (default: the last listed). Older ids stay for decryption."""
    spec = env.get("TUANTIBU_MASTER_KEYS")
    if not spec:
        if mode == "production":
            raise ConfigError("TUANTIBU_MASTER_KEYS must be set in production mode")
        return {"dev1": _dev_secret("TUANTIBU_MASTER_KEYS")}, "dev1"
    keys: dict[str, bytes] = {}
    for part in spec.split(","):
        key_id, _, value = part.strip().partition(":")
        if not key_id or not value:
            raise ConfigError("TUANTIBU_MASTER_KEYS entries look like id:base64key")
        keys[key_id] = _b64key(value, f"TUANTIBU_MASTER_KEYS[{key_id}]")
    current = env.get("TUANTIBU_MASTER_KEY_ID") or list(keys)[-1]
    if current not in keys:
        raise ConfigError(f"TUANTIBU_MASTER_KEY_ID {current!r} is not in TUANTIBU_MASTER_KEYS")
    return keys, current


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _count(env: Mapping[str, str], name: str, default: str, least: int = 0) -> int:
    value = int(env.get(name, default))
    if value < least:
        raise ConfigError(f"{name} must be {least} or more, got {value}")
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    mode = env.get("TUANTIBU_MODE", "dev")
    if mode not in {"dev", "production"}:
        raise ConfigError("TUANTIBU_MODE must be dev or production")
    master_keys, master_key_id = _master_keys(env, mode)
    gateway_address = env.get("GATEWAY_ADDRESS", "127.0.0.1:8000")
    try:
        return Settings(
            mode=mode,
            database_url=env.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/tuantibu"),
            amqp_uri=env.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/"),
            gateway_address=gateway_address,
            public_base_url=env.get("PUBLIC_BASE_URL", f"http://{gateway_address}").rstrip("/"),
            healthkit_url=env.get("HEALTHKIT_URL", "http://127.0.0.1:8010").rstrip("/"),
            healthkit_sim_address=env.get("HEALTHKIT_SIM_ADDRESS", "127.0.0.1:8010"),
            healthkit_timeout=float(env.get("HEALTHKIT_TIMEOUT", "3")),
            healthkit_retries=int(env.get("HEALTHKIT_RETRIES", "3")),
            sim_latency_ms=int(env.get("SIM_LATENCY_MS", "0")),
            sim_failure_rate=float(env.get("SIM_FAILURE_RATE", "0")),
            dev_sms_enabled=_bool(env.get("DEV_SMS_ENABLED"), mode == "dev"),
            rpc_timeout=float(env.get("RPC_TIMEOUT", "10")),
            code_ttl_seconds=int(env.get("CODE_TTL_SECONDS", "300")),
            code_max_attempts=int(env.get("CODE_MAX_ATTEMPTS", "5")),
            resend_cooldown_seconds=int(env.get("RESEND_COOLDOWN_SECONDS", "60")),
            sms_daily_cap_per_phone=int(env.get("SMS_DAILY_CAP_PER_PHONE", "10")),
            sms_daily_cap_per_client=int(env.get("SMS_DAILY_CAP_PER_CLIENT", "100")),
            session_idle_seconds=int(env.get("SESSION_IDLE_SECONDS", "3600")),
            session_absolute_seconds=int(env.get("SESSION_ABSOLUTE_SECONDS", "86400")),
            handler_retries=int(env.get("HANDLER_RETRIES", "4")),
            handler_backoff_seconds=float(env.get("HANDLER_BACKOFF_SECONDS", "0.5")),
            demo_residents=int(env.get("DEMO_RESIDENTS", "200")),
            ledger_member_cap=int(env.get("LEDGER_MEMBER_CAP", "10000")),
            challenge_grace_seconds=int(env.get("CHALLENGE_GRACE_SECONDS", "60")),
            sweep_interval_seconds=float(env.get("SWEEP_INTERVAL_SECONDS", "30")),
            sync_times=tuple(
                t.strip() for t in env.get("SYNC_TIMES", "06:00,09:00,12:00,16:00").split(",") if t.strip()
                # SYNC_TIMES="" turns the schedule off
            ),
            sync_timezone=env.get("SYNC_TIMEZONE", "Asia/Shanghai"),
            schedule_check_seconds=float(env.get("SCHEDULE_CHECK_SECONDS", "20")),
            schedule_catchup_minutes=int(env.get("SCHEDULE_CATCHUP_MINUTES", "30")),
            sync_min_interval_seconds=int(env.get("SYNC_MIN_INTERVAL_SECONDS", "300")),
            recheck_min_interval_seconds=int(env.get("RECHECK_MIN_INTERVAL_SECONDS", "60")),
            sync_batch_retries=int(env.get("SYNC_BATCH_RETRIES", "3")),
            feed_interval_seconds=float(env.get("FEED_INTERVAL_SECONDS", "10")),
            digest_check_seconds=float(env.get("DIGEST_CHECK_SECONDS", "300")),
            run_history_days=int(env.get("RUN_HISTORY_DAYS", "30")),
            access_log_days=int(env.get("ACCESS_LOG_DAYS", "180")),
            handled_events_days=int(env.get("HANDLED_EVENTS_DAYS", "30")),
            challenge_days=int(env.get("CHALLENGE_DAYS", "7")),
            housekeeping_seconds=float(env.get("HOUSEKEEPING_SECONDS", "60")),
            gateway_tls_cert=env.get("GATEWAY_TLS_CERT", ""),
            gateway_tls_key=env.get("GATEWAY_TLS_KEY", ""),
            session_cache_seconds=float(env.get("SESSION_CACHE_SECONDS", "10")),
            join_info_cache_seconds=float(env.get("JOIN_INFO_CACHE_SECONDS", "10")),
            trusted_proxy_hops=_count(env, "TRUSTED_PROXY_HOPS", "0"),
            db_pool_size=_count(env, "DB_POOL_SIZE", "10", least=1),
            identity_mismatches_per_day=_count(env, "IDENTITY_MISMATCHES_PER_DAY", "5", least=1),
            identity_mismatches_per_client=_count(env, "IDENTITY_MISMATCHES_PER_CLIENT", "50", least=1),
            master_keys=master_keys,
            master_key_id=master_key_id,
            blind_index_key=_secret(env, "BLIND_INDEX_KEY", mode),
            transit_secret=_secret(env, "TRANSIT_SECRET", mode),
            qr_signing_key=_secret(env, "QR_SIGNING_KEY", mode),
            code_hmac_key=_secret(env, "CODE_HMAC_KEY", mode),
        )
    except ValueError as exc:
        raise ConfigError(f"a numeric setting is malformed: {exc}") from exc


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The process-wide settings (read once)."""
    return load_settings()
