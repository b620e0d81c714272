"""The dev SMS outbox: messages are stored, not sent, so a person trying Tuantibu can
read their codes (``python -m shared.sms --phone 13800138000``).

Schema ``sms_dev``, table ``messages``: ``id``, ``phone_key`` (keyed blind index of the
phone: HMAC-SHA256 with ``BLIND_INDEX_KEY``, purpose ``"sms-dev-phone"``),
``masked_phone`` (``138****8000``), ``template``, ``text``, ``sent_at``. The plaintext
phone is never stored; messages are found by computing the same index.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shared.crypto import blind_index
from shared.db import create_store
from shared.masking import mask_phone
from shared.validation import FieldError, validate_phone

from . import SmsUnavailable, render

log = logging.getLogger("shared.sms.dev_outbox")

SCHEMA = "sms_dev"
PHONE_PURPOSE = "sms-dev-phone"

metadata = sa.MetaData(schema=SCHEMA)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),  # bigserial
    sa.Column("phone_key", sa.Text, nullable=False),
    sa.Column("masked_phone", sa.Text, nullable=False),
    sa.Column("template", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column(
        "sent_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Index("messages_phone_key_idx", "phone_key", "id"),
)

# built once (one built per call costs more CPU than running it)
STORE = messages.insert().inline()
LATEST = sa.select(messages).order_by(messages.c.id.desc()).limit(sa.bindparam("limit"))
MESSAGES_TO = (
    sa.select(messages)
    .where(messages.c.phone_key == sa.bindparam("phone_key"))
    .order_by(messages.c.id.desc())
    .limit(sa.bindparam("limit"))
)


def ensure_schema(engine: Engine) -> None:
    """Create schema ``sms_dev`` and its table if missing (safe from several processes
    at once, and on an autocommit engine)."""
    create_store(engine, SCHEMA, metadata)


def _clean_phone(phone: str) -> str:
    try:
        return validate_phone(phone)
    except FieldError:
        raise ValueError("the phone is not a mainland mobile number") from None


class DevOutbox:
    """:class:`~shared.sms.SmsSender` that writes each message to ``sms_dev.messages``."""

    def __init__(self, engine: Engine, key: bytes | None = None) -> None:
        if key is None:
            from shared.config import settings

            key = settings().blind_index_key
        self.engine = engine
        self._key = key
        try:
            ensure_schema(engine)
        except sa.exc.DBAPIError:
            raise SmsUnavailable("The SMS outbox store is not reachable.") from None

    def __repr__(self) -> str:
        return f"DevOutbox({self.engine.url.render_as_string(hide_password=True)!r})"

    def phone_key(self, phone: str) -> str:
        """The blind index messages to ``phone`` are stored under."""
        return blind_index(self._key, PHONE_PURPOSE, _clean_phone(phone))

    def send(self, phone: str, template: str, params: Mapping[str, str]) -> None:
        number = _clean_phone(phone)
        text = render(template, params)
        row = {
            "phone_key": blind_index(self._key, PHONE_PURPOSE, number),
            "masked_phone": mask_phone(number),
            "template": template,
            "text": text,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(STORE, row)
        except sa.exc.DBAPIError:
            log.error("dev outbox: could not store a %s message", template)
            raise SmsUnavailable() from None
        log.info("dev outbox: %s message to %s stored", template, row["masked_phone"])

    def messages_for(self, phone: str, limit: int = 20) -> list[dict[str, Any]]:
        """Messages sent to ``phone``, newest first."""
        return self._fetch(MESSAGES_TO, {"phone_key": self.phone_key(phone), "limit": max(1, int(limit))})

    def latest(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest messages to anyone, newest first."""
        return self._fetch(LATEST, {"limit": max(1, int(limit))})

    def _fetch(self, query, params: dict) -> list[dict[str, Any]]:
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(query, params).mappings().all()
        except sa.exc.DBAPIError:
            raise SmsUnavailable("The SMS outbox store is not reachable.") from None
        return [
            {
                "id": row["id"],
                "masked_phone": row["masked_phone"],
                "template": row["template"],
                "text": row["text"],
                "sent_at": row["sent_at"].isoformat(),
            }
            for row in rows
        ]
