"""The one table from errors to HTTP status, and the JSON error body.

Every error body is ``{"error": {"code", "message", "field"?, "details"?}}``; no value
the user sent is ever echoed back.
"""

from __future__ import annotations

from shared import errors

HTTP_STATUS: list[tuple[type[errors.TuantibuError], int]] = [
    # most specific first
    (errors.IdentityRejected, 422),
    (errors.WrongCode, 422),
    (errors.CodeExpired, 410),
    (errors.TooManyAttempts, 429),
    (errors.LedgerClosed, 410),
    (errors.ChallengeFailed, 422),
    (errors.InvalidInput, 400),
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.RateLimited, 429),
    (errors.Unavailable, 503),
    (errors.TuantibuError, 500),
]


def status_for(error: errors.TuantibuError) -> int:
    for cls, status in HTTP_STATUS:
        if isinstance(error, cls):
            return status
    return 500
