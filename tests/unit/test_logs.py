"""What the logs may say about a failure: the redaction of IDs and phones, and where
in our code an exception was raised (never its message)."""

import json

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.gateway.api import endpoint
from shared.logs import redact, where

ID, PHONE = "110101199003071233", "13800138000"


def test_ids_and_phones_are_masked_in_a_line():
    line = redact(f"duplicate key ({ID}) for {PHONE}")
    assert ID not in line and PHONE not in line
    assert "138****8000" in line


def _parse(text: str) -> dict:
    return json.loads(text)  # raises from inside the json library


def _inner(value: str) -> dict:
    return _parse(value)


def test_where_names_our_frames_innermost_first_and_not_the_message():
    try:
        _inner(f"{{'id': '{ID}'}}")
    except ValueError as exc:
        found = where(exc)
    frames = found.split(" ← ")
    assert frames[0].startswith("tests/unit/test_logs.py:") and frames[0].endswith(" _parse")
    assert frames[1].endswith(" _inner") and frames[2].endswith(" test_where_names_our_frames_innermost_first_and_not_the_message")
    assert ID not in found and "json" not in found  # no message, no library frame


def test_where_keeps_only_the_innermost_frames():
    try:
        _inner("not json")
    except ValueError as exc:
        assert len(where(exc, frames=1).split(" ← ")) == 1


def test_the_gateway_logs_where_an_unexpected_error_was_raised(caplog):
    @endpoint
    def broken(self, request):
        return {}[ID]  # a KeyError quoting an ID number

    request = Request(EnvironBuilder(path="/api/x").get_environ())
    with caplog.at_level("ERROR", logger="services.gateway.api"):
        response = broken(None, request)
    assert response.status_code == 500 and ID not in response.get_data(as_text=True)
    [record] = caplog.records
    assert record.getMessage().startswith("unexpected KeyError in broken at tests/unit/test_logs.py:")
    assert ID not in record.getMessage()
