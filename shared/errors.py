"""The one error tree of Tuantibu.

Every error a service raises on purpose is one of these. They cross RPC intact
(registered with Nameko's deserializer), carry no personal data (never a value the
user typed, only which field and why), and the gateway maps each class to an HTTP
status in a single table (``services/gateway/errors.py``).

    TuantibuError                 base; ``code``, ``message``, ``field``, ``details``
    ├── InvalidInput              a field is missing or malformed; ``details`` maps
    │                             every bad field to its reason
    ├── Unauthenticated           no session token, or it expired or was revoked
    ├── Forbidden                 authenticated, but not allowed to do this
    ├── NotFound                  no such thing (or not visible to the caller)
    ├── Conflict                  the request clashes with the current state
    │   └── LedgerClosed          one of its admins asks for a closed ledger's data
    ├── ChallengeFailed           an SMS verification step failed
    │   ├── IdentityRejected      name/ID/phone do not match the Health Kit record
    │   ├── WrongCode             the code is not the one sent (tries remain)
    │   ├── CodeExpired           the code is older than its validity
    │   └── TooManyAttempts       five wrong codes: the challenge is dead
    ├── RateLimited               resend too soon, or a daily cap reached
    └── Unavailable               a system we depend on did not answer in time
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from nameko.exceptions import deserialize_to_instance

from shared.health import HEALTH_KIT_TZ


class TuantibuError(Exception):
    """Base of every deliberate error.

    ``code`` is a stable machine name, ``message`` a sentence for people,
    ``field`` the input field at fault (if one), ``details`` extra safe data.
    """

    code = "error"
    default_message = "Something went wrong."

    def __init__(
        self,
        message: str | None = None,
        field: str | None = None,
        details: dict[str, Any] | str | None = None,
        code: str | None = None,
    ) -> None:
        if isinstance(details, str):  # rebuilt from RPC (see below)
            details = json.loads(details)
        self.message = message or self.default_message
        self.field = field or None
        self.details = details or {}
        if code:
            self.code = code
        # args are what Nameko serialises across RPC, stringifying anything that is
        # not a string: so send strings, and details as JSON, to rebuild them exactly.
        super().__init__(self.message, self.field or "", json.dumps(self.details), self.code)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        deserialize_to_instance(cls)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" + (f" (field {self.field})" if self.field else "")

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        if self.details:
            body["details"] = self.details
        return body


deserialize_to_instance(TuantibuError)


class InvalidInput(TuantibuError):
    """Raised when input fails validation; ``details['fields']`` maps field → reason."""

    code = "invalid_input"
    default_message = "Some fields are not valid."

    @classmethod
    def from_fields(cls, errors: dict[str, str]) -> "InvalidInput":
        first = next(iter(errors))
        message = "; ".join(f"{name}: {reason}" for name, reason in errors.items())
        return cls(message, field=first, details={"fields": errors})


class Unauthenticated(TuantibuError):
    """Raised when a request needs a session and has none that is valid."""

    code = "unauthenticated"
    default_message = "Please log in."


class Forbidden(TuantibuError):
    """Raised when the caller is known but may not do this."""

    code = "forbidden"
    default_message = "You are not allowed to do this."


class NotFound(TuantibuError):
    """Raised when the thing does not exist or is not visible to the caller."""

    code = "not_found"
    default_message = "Not found."


class Conflict(TuantibuError):
    """Raised when the request clashes with the current state (e.g. ledger not active)."""

    code = "conflict"
    default_message = "This cannot be done in the current state."


class LedgerClosed(Conflict):
    """Raised when one of a closed ledger's admins asks for its members' data or to
    act on it: closing destroyed its data keys, so nothing of it can be read again.
    Raised only after the admin check: to anyone who was never its admin the ledger is
    Forbidden (or NotFound) as any other, so nobody learns that someone else's closed.
    ``details['closed_at']`` is when (ISO time)."""

    code = "ledger_closed"
    default_message = "This ledger was closed; its members' data was destroyed."

    @classmethod
    def if_closed(cls, ledger) -> None:
        """Raise it for a ledger (any service's record of one: ``status``,
        ``closed_at``) that closed. Call it after the admin check."""
        if ledger.status == "closed":
            raise cls.at(ledger.closed_at)

    @classmethod
    def at(cls, closed_at: datetime | None) -> "LedgerClosed":
        """The error naming the day it closed (Beijing's calendar day)."""
        if closed_at is None:
            return cls()
        day = closed_at.astimezone(HEALTH_KIT_TZ).date().isoformat()
        return cls(f"This ledger was closed on {day}; its members' data was destroyed.",
                   details={"closed_at": closed_at.isoformat()})


class ChallengeFailed(TuantibuError):
    """Base for failed SMS verification steps."""

    code = "challenge_failed"
    default_message = "Verification failed."


class IdentityRejected(ChallengeFailed):
    """Raised when name, ID and phone do not match what the Health Kit holds."""

    code = "identity_rejected"
    default_message = "The details do not match the Health Kit record."


class WrongCode(ChallengeFailed):
    """Raised when the SMS code is wrong; ``details['attempts_left']`` says how many remain."""

    code = "wrong_code"
    default_message = "The code is not correct."


class CodeExpired(ChallengeFailed):
    """Raised when the SMS code is past its validity; ask for a new one."""

    code = "code_expired"
    default_message = "The code has expired; request a new one."


class TooManyAttempts(ChallengeFailed):
    """Raised after too many wrong codes; the challenge cannot be used any more."""

    code = "too_many_attempts"
    default_message = "Too many wrong codes; start again."


class RateLimited(TuantibuError):
    """Raised when a resend comes too soon or a daily cap is reached; ``details['retry_after']``."""

    code = "rate_limited"
    default_message = "Too many requests; try again later."


class Unavailable(TuantibuError):
    """Raised when a dependency (a service, the Health Kit, SMS) does not answer in time."""

    code = "unavailable"
    default_message = "The service is temporarily unavailable; try again later."
