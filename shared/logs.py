"""Logging that cannot leak a phone or an ID number.

Services never log personal data on purpose; this filter is the second line of defence
for what they do not control (a library quoting a value in an error message): any
11-digit mainland mobile number or 15/18-character resident ID in a log line is masked
before the line is written.
"""

from __future__ import annotations

import logging
import re
import traceback
from pathlib import Path

from shared.masking import mask_id_number, mask_phone

_ROOT = Path(__file__).resolve().parent.parent
_ID = re.compile(r"(?<![0-9A-Za-z])(\d{17}[\dXx]|\d{15})(?![0-9A-Za-z])")
_PHONE = re.compile(r"(?<!\d)(1[3-9]\d{9})(?!\d)")


def redact(text: str) -> str:
    text = _ID.sub(lambda m: mask_id_number(m.group(1)), text)
    return _PHONE.sub(lambda m: mask_phone(m.group(1)), text)


class RedactPersonalData(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is logged as is
            return True
        cleaned = redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def where(exc: BaseException, frames: int = 3) -> str:
    """Where in our code an exception came from: its innermost ``frames`` frames in the
    project, as ``path:line function``, innermost first. File, line and function name
    only, never the exception's message or a value: the operator finds the line, and
    no personal data a message might quote reaches the log."""
    ours = []
    for frame in traceback.extract_tb(exc.__traceback__):
        try:
            path = Path(frame.filename).resolve().relative_to(_ROOT)
        except ValueError:  # a library's frame
            continue
        ours.append(f"{path}:{frame.lineno} {frame.name}")
    return " ← ".join(reversed(ours[-frames:])) or "outside the project's code"
