"""The Health Kit (健康宝) adapter: one small interface, a real HTTP implementation and a
simulator that speaks the same HTTP, chosen by config (``HEALTHKIT_URL``).

    from shared.healthkit import health_kit, IdentityMatch

    kit = health_kit()                              # HttpHealthKit(settings.healthkit_url)
    kit.match_identity("张伟", "resident_id", id_number, phone)   # -> IdentityMatch
    kit.bulk_status(id_numbers)                     # -> {id_number: HealthRecord}, ≤ 1000 ids
    kit.changes(after=cursor)                       # -> ([Change, ...], next_cursor)

Every failure to get an answer (connection refused, timeout, HTTP 5xx, after retries with
backoff) raises :class:`HealthKitUnavailable`; its message never holds an ID number or a
phone. The simulator (``python -m shared.healthkit serve``) is what ``HEALTHKIT_URL``
points at in dev and tests; a deployment against the authority's real system points the
same setting at it (or puts a translating adapter behind this interface).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence, runtime_checkable

from shared.errors import Unavailable
from shared.validation import ID_TYPES as _VALIDATION_ID_TYPES

if TYPE_CHECKING:  # pragma: no cover
    from shared.config import Settings

__all__ = [
    "CODE_STATUSES",
    "CODE_STATUS_LABELS",
    "TEST_RESULTS",
    "TEST_RESULT_LABELS",
    "VACCINATIONS",
    "VACCINATION_LABELS",
    "POPUP_KINDS",
    "ID_TYPES",
    "MAX_BULK",
    "HealthRecord",
    "Change",
    "IdentityMatch",
    "HealthKitUnavailable",
    "HealthKit",
    "health_kit",
]

#: Health code colours, as the Health Kit shows them.
CODE_STATUSES = ("green", "yellow", "red")
CODE_STATUS_LABELS = {"green": "未见异常", "yellow": "居家观察", "red": "集中观察"}

#: Result of the last nucleic-acid test.
TEST_RESULTS = ("negative", "positive", "pending")
TEST_RESULT_LABELS = {"negative": "阴性", "positive": "阳性", "pending": "待出结果"}

#: Vaccination status categories.
VACCINATIONS = ("booster", "primary", "incomplete", "unsuitable", "none_found")
VACCINATION_LABELS = {
    "booster": "完成加强免疫",
    "primary": "完成基础免疫",
    "incomplete": "未完成基础免疫",
    "unsuitable": "不适宜接种",
    "none_found": "未查询到接种信息",
}

#: Pop-up (弹窗) kinds the simulator hands out; the real system may show others, so a
#: record's ``popup`` is any short text or ``None``.
POPUP_KINDS = ("弹窗一", "弹窗二", "弹窗三")

#: Document types the Health Kit knows a person by (the ones Tuantibu accepts).
ID_TYPES = _VALIDATION_ID_TYPES

#: Most ID numbers one ``bulk_status`` call may carry.
MAX_BULK = 1000


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: Any, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{name} is not an ISO 8601 time") from None
    else:
        raise ValueError(f"{name} is not an ISO 8601 time")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"{name} must carry a time zone offset")
    return parsed


@dataclass(frozen=True)
class HealthRecord:
    """One person's health state as the Health Kit reports it.

    ``last_test_sampled_at`` / ``last_test_result`` are both ``None`` when the person
    has no test on record. Times are timezone-aware.
    """

    id_number: str
    code_status: str
    popup: str | None
    last_test_sampled_at: datetime | None
    last_test_result: str | None
    vaccination: str
    updated_at: datetime | None

    def __post_init__(self) -> None:
        if self.code_status not in CODE_STATUSES:
            raise ValueError("code_status is not one of " + ", ".join(CODE_STATUSES))
        if self.last_test_result is not None and self.last_test_result not in TEST_RESULTS:
            raise ValueError("last_test_result is not one of " + ", ".join(TEST_RESULTS))
        if self.vaccination not in VACCINATIONS:
            raise ValueError("vaccination is not one of " + ", ".join(VACCINATIONS))
        for name in ("last_test_sampled_at", "updated_at"):
            value = getattr(self, name)
            if value is not None and (value.tzinfo is None or value.utcoffset() is None):
                raise ValueError(f"{name} must be timezone-aware")

    @property
    def code_status_label(self) -> str:
        return CODE_STATUS_LABELS[self.code_status]

    @property
    def vaccination_label(self) -> str:
        return VACCINATION_LABELS[self.vaccination]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id_number": self.id_number,
            "code_status": self.code_status,
            "popup": self.popup,
            "last_test_sampled_at": _iso(self.last_test_sampled_at),
            "last_test_result": self.last_test_result,
            "vaccination": self.vaccination,
            "updated_at": _iso(self.updated_at),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "HealthRecord":
        """Build a record from :meth:`to_dict` output; raises ``ValueError`` if malformed
        (the message names the field, never its value)."""
        try:
            id_number = data["id_number"]
            code_status = data["code_status"]
            vaccination = data["vaccination"]
        except KeyError as exc:
            raise ValueError(f"health record lacks {exc.args[0]}") from None
        if not isinstance(id_number, str) or not id_number:
            raise ValueError("id_number must be a non-empty string")
        popup = data.get("popup") or None
        if popup is not None and not isinstance(popup, str):
            raise ValueError("popup must be a string or null")
        return cls(
            id_number=id_number,
            code_status=code_status,
            popup=popup,
            last_test_sampled_at=_parse_time(
                data.get("last_test_sampled_at"), "last_test_sampled_at"
            ),
            last_test_result=data.get("last_test_result") or None,
            vaccination=vaccination,
            updated_at=_parse_time(data.get("updated_at"), "updated_at"),
        )


@dataclass(frozen=True)
class Change:
    """One entry of the change feed: this person's record changed at ``changed_at``."""

    seq: int
    id_number: str
    changed_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "id_number": self.id_number, "changed_at": _iso(self.changed_at)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Change":
        try:
            seq = int(data["seq"])
            id_number = str(data["id_number"])
            changed_at = _parse_time(data["changed_at"], "changed_at")
        except KeyError as exc:
            raise ValueError(f"change lacks {exc.args[0]}") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"malformed change: {exc}") from None
        if changed_at is None:
            raise ValueError("changed_at is missing")
        return cls(seq=seq, id_number=id_number, changed_at=changed_at)


class IdentityMatch(str, Enum):
    """Answer of :meth:`HealthKit.match_identity`."""

    MATCH = "match"
    PHONE_MISMATCH = "phone_mismatch"
    NAME_MISMATCH = "name_mismatch"
    NOT_FOUND = "not_found"


class HealthKitUnavailable(Unavailable):
    """Raised when the Health Kit does not answer (after retries). No personal data inside."""

    code = "healthkit_unavailable"
    default_message = "The Health Kit is not answering; try again later."


@runtime_checkable
class HealthKit(Protocol):
    """What Tuantibu needs from the Health Kit."""

    def match_identity(
        self, name: str, id_type: str, id_number: str, phone: str
    ) -> IdentityMatch:
        """Do name and phone match the Health Kit's record for this document?"""
        ...

    def bulk_status(self, id_numbers: Sequence[str]) -> dict[str, HealthRecord]:
        """Health records for up to :data:`MAX_BULK` ids (``ValueError`` beyond).

        Ids unknown to the Health Kit are simply absent from the result.
        """
        ...

    def changes(self, after: int, limit: int = 1000) -> tuple[list[Change], int]:
        """Change-feed entries with ``seq > after`` (oldest first, at most ``limit``)
        and the cursor to pass next time (``after`` itself when nothing is new)."""
        ...


def health_kit(settings: "Settings | None" = None) -> HealthKit:
    """The Health Kit adapter for this configuration: HTTP to ``settings.healthkit_url``
    (the simulator in dev and tests), with ``healthkit_timeout`` / ``healthkit_retries``."""
    from shared.config import settings as load

    from .client import HttpHealthKit

    s = settings or load()
    return HttpHealthKit(s.healthkit_url, timeout=s.healthkit_timeout, retries=s.healthkit_retries)
