"""Sending SMS: one small interface, adapters chosen by config.

    from shared.sms import sms_sender

    sms_sender().send("13800138000", "verification_code",
                      {"code": "123456", "minutes": "5", "purpose": "加入团体簿"})

Texts come only from :data:`TEMPLATES` (as a real SMS provider requires registered
templates); ``params`` fill their ``{placeholders}``, all of them, nothing else.

The only adapter so far is the dev outbox (:class:`~shared.sms.dev_outbox.DevOutbox`):
messages are stored in PostgreSQL schema ``sms_dev`` and read with
``python -m shared.sms --phone 13800138000`` (or the gateway's dev page). A real
provider goes behind the same :class:`SmsSender` interface and is picked here.
Failures to send raise :class:`SmsUnavailable`, whose message never holds the phone.
"""

from __future__ import annotations

import logging
import string
from typing import TYPE_CHECKING, Mapping, Protocol, runtime_checkable

from shared.errors import Unavailable

if TYPE_CHECKING:  # pragma: no cover
    from shared.config import Settings
    from shared.sms.dev_outbox import DevOutbox

__all__ = ["TEMPLATES", "SmsSender", "SmsUnavailable", "render", "placeholders", "sms_sender"]

log = logging.getLogger("shared.sms")

TEMPLATES: dict[str, str] = {
    "verification_code": (
        "【团体簿】验证码 {code}，{minutes} 分钟内有效，用于{purpose}。如非本人操作请忽略。"
    ),
    "test_reminder": "【团体簿】{org_name}提醒您：请按要求及时进行核酸检测。",
    "left_ledger": "【团体簿】您已退出{org_name}的团体簿，您在其中的信息已删除。",
    "health_reminder": "【团体簿】{org_name}提醒您：您当前未满足防疫要求（{rule}），请及时处理。",
    "alert_digest": "【团体簿】您管理的团体簿{org_name}今日有 {count} 条成员状态变化提醒，请登录查看。",
}


class SmsUnavailable(Unavailable):
    """Raised when a message could not be handed to the SMS channel. No phone inside."""

    code = "sms_unavailable"
    default_message = "Text messages cannot be sent right now; try again later."


@runtime_checkable
class SmsSender(Protocol):
    def send(self, phone: str, template: str, params: Mapping[str, str]) -> None:
        """Send template ``template`` filled with ``params`` to ``phone``."""
        ...


def placeholders(template: str) -> set[str]:
    """The ``{names}`` a template of :data:`TEMPLATES` needs."""
    text = TEMPLATES[template]
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def render(template: str, params: Mapping[str, str]) -> str:
    """The text of ``template`` with ``params``; ``ValueError`` for an unknown template
    or a missing/extra parameter (the message names them, never their values)."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown SMS template {template!r}")
    needed = placeholders(template)
    missing = sorted(needed - set(params))
    extra = sorted(set(params) - needed)
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if extra:
            parts.append("unexpected " + ", ".join(extra))
        raise ValueError(f"SMS template {template!r}: " + "; ".join(parts))
    return TEMPLATES[template].format_map({k: str(v) for k, v in params.items()})


_senders: dict[tuple[str, bytes], "DevOutbox"] = {}


def sms_sender(settings: "Settings | None" = None) -> SmsSender:
    """The SMS adapter for this configuration. For now always the dev outbox in
    ``settings.database_url`` (one instance per database, shared by callers)."""
    from shared.config import settings as load
    from shared.sms.dev_outbox import DevOutbox

    s = settings or load()
    cache_key = (s.database_url, s.blind_index_key)
    sender = _senders.get(cache_key)
    if sender is None:
        from shared.db import make_engine

        if not s.is_dev:
            log.warning("no SMS provider is configured: messages go to the dev outbox (sms_dev)")
        sender = DevOutbox(make_engine(s.database_url, pool_size=6, autocommit=True, application_name="tuantibu-dev-sms"), key=s.blind_index_key)
        _senders[cache_key] = sender
    return sender
