"""Validation of the personal data Tuantibu collects, in one place.

We collect only a name, a document type + number and a phone (DESIGN.md, "Personal
data"), and every service that accepts them must agree on what is valid and on the
normalised form: the normalised ID number is what the person reference (a blind index)
is computed from, so two spellings of one number must clean to the same string.

Each ``validate_*`` function takes the raw value, returns the cleaned value, or raises
:class:`FieldError` with a machine ``code`` and an English ``message`` that never
repeats the value (error messages cross RPC and reach logs; personal data must not).
:func:`validate_fields` runs a spec of validators over a request body and turns every
failure at once into one :class:`~shared.errors.InvalidInput`.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Any, Callable, Mapping

from shared.errors import InvalidInput

ID_TYPES: tuple[str, ...] = (
    "resident_id",
    "passport",
    "hk_macao_permit",
    "taiwan_permit",
)
"""Accepted document types; ``resident_id`` is the 18-digit PRC resident identity card."""

MIN_BIRTH_YEAR = 1900
"""Earliest birth year accepted in a resident ID (sanity bound against garbage dates)."""

_DEFAULT_MESSAGES: dict[str, str] = {
    "required": "This field is required.",
    "too_long": "This field is too long.",
    "bad_format": "This field is not in the expected format.",
    "bad_check_digit": "The ID number's check digit is wrong; please check the number.",
    "bad_birth_date": "The ID number does not contain a valid date of birth.",
    "not_mainland_mobile": "Enter a mainland China mobile number (11 digits starting with 1).",
    "unknown_id_type": "Unknown document type.",
}

_CHECK_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"

# Digits are spelled [0-9]: in Python ``\d`` also matches full-width and other digits.
_RESIDENT_ID_RE = re.compile(r"[0-9]{17}[0-9X]")
_PASSPORT_RE = re.compile(r"[A-Z0-9]{5,17}")
_HK_MACAO_RE = re.compile(r"[HM][0-9]{8}(?:[0-9]{2})?")
_TAIWAN_RE = re.compile(r"[0-9]{8}(?:[0-9]{2})?")
_PHONE_SEPARATORS_RE = re.compile(r"[\s\-]+")
_PHONE_RE = re.compile(r"(?:\+?86)?(1[3-9][0-9]{9})")
_CODE_RE = re.compile(r"[0-9]{6}")

_NAME_DOTS = str.maketrans({"•": "·", "・": "·", "‧": "·", "･": "·", "’": "'"})
_NAME_CHAR_RE = re.compile(
    "["
    "A-Za-z"
    "\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"  # Latin-1 letters, Latin Extended-A/B
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # CJK unified (+ ext. A), compatibility
    "\U00020000-\U0003134f"  # CJK extensions B-G (rare characters in names)
    "\u3007"  # 〇, used in some names
    "·\\-' "
    "]"
)
_NAME_LETTER_RE = re.compile(r"[^·\-' ]")
_BAD_TEXT_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


class FieldError(ValueError):
    """One field failed validation.

    ``code`` is a stable machine reason (``required``, ``too_long``, ``bad_format``,
    ``bad_check_digit``, ``bad_birth_date``, ``not_mainland_mobile``,
    ``unknown_id_type``); ``message`` is an English sentence for people and never
    contains the value that was given.
    """

    def __init__(self, code: str, message: str | None = None) -> None:
        self.code = code
        self.message = message or _DEFAULT_MESSAGES.get(
            code, "This field is not valid."
        )
        super().__init__(self.message)


def _require_text(value: Any) -> str:
    """Return ``value`` stripped, raising ``required`` if empty, ``bad_format`` if not text."""
    if value is None:
        raise FieldError("required")
    if not isinstance(value, str):
        raise FieldError("bad_format", "This field must be text.")
    value = value.strip()
    if not value:
        raise FieldError("required")
    return value


def _compact(value: Any) -> str:
    """A number as people type or paste it: full-width characters (a Chinese keyboard's
    digits and letters) as ASCII, and no spaces."""
    return "".join(unicodedata.normalize("NFKC", _require_text(value)).split())


def resident_id_check_digit(first17: str) -> str:
    """The GB 11643-1999 check character ("0"-"9" or "X") for the first 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("the check digit is computed over exactly 17 ASCII digits")
    total = sum(int(digit) * weight for digit, weight in zip(first17, _CHECK_WEIGHTS))
    return _CHECK_CHARS[total % 11]


def validate_resident_id(value: Any) -> str:
    """Validate an 18-digit PRC resident ID; return it compacted with an uppercase X."""
    value = _compact(value).upper()
    if len(value) > 18:
        raise FieldError("too_long", "A resident ID number has 18 characters.")
    if not _RESIDENT_ID_RE.fullmatch(value):
        raise FieldError(
            "bad_format", "A resident ID number has 17 digits followed by a digit or X."
        )
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise FieldError("bad_birth_date") from None
    if born.year < MIN_BIRTH_YEAR or born > date.today():
        raise FieldError("bad_birth_date")
    if resident_id_check_digit(value[:17]) != value[17]:
        raise FieldError("bad_check_digit")
    return value


def validate_id_type(value: Any) -> str:
    """Validate a document type: one of :data:`ID_TYPES` (case-insensitive)."""
    value = _require_text(value).lower()
    if value not in ID_TYPES:
        raise FieldError("unknown_id_type")
    return value


def validate_id_number(id_type: Any, value: Any) -> str:
    """Validate an ID number for its document type; return the normalised number.

    ``id_type`` is cleaned as by :func:`validate_id_type`, so a raw value may be passed
    (an unknown or missing type raises ``unknown_id_type``).
    """
    try:
        kind = validate_id_type(id_type)
    except FieldError:
        raise FieldError("unknown_id_type") from None
    if kind == "resident_id":
        return validate_resident_id(value)
    number = _compact(value).upper()
    if kind == "passport":
        if len(number) > 17:
            raise FieldError("too_long", "A passport number has at most 17 characters.")
        if not _PASSPORT_RE.fullmatch(number):
            raise FieldError(
                "bad_format", "A passport number has 5 to 17 letters and digits."
            )
    elif kind == "hk_macao_permit":
        if not _HK_MACAO_RE.fullmatch(number):
            raise FieldError(
                "bad_format",
                "A Hong Kong/Macao permit number is H or M followed by 8 or 10 digits.",
            )
    elif not _TAIWAN_RE.fullmatch(number):  # taiwan_permit
        raise FieldError("bad_format", "A Taiwan permit number has 8 or 10 digits.")
    return number


def validate_phone(value: Any) -> str:
    """Validate a mainland China mobile number; return its 11 digits.

    Full-width digits are read as digits, spaces and hyphens are ignored and a ``+86`` /
    ``86`` prefix is dropped.
    """
    value = _PHONE_SEPARATORS_RE.sub("", unicodedata.normalize("NFKC", _require_text(value)))
    if not value:
        raise FieldError("required")
    if not value.isascii() or not value.lstrip("+").isdigit() or value.count("+") > 1:
        raise FieldError("bad_format", "A phone number may contain only digits.")
    match = _PHONE_RE.fullmatch(value)
    if not match:
        raise FieldError("not_mainland_mobile")
    return match.group(1)


def validate_name(value: Any, max_length: int = 30) -> str:
    """Validate a person's name; return it stripped, with inner whitespace collapsed.

    Allowed: Chinese characters, Latin letters, the middle dot "·" (look-alike dots are
    turned into it), spaces, hyphens and apostrophes; no digits or control characters.
    """
    value = unicodedata.normalize("NFKC", _require_text(value)).translate(_NAME_DOTS)
    value = " ".join(value.split())
    if not value:
        raise FieldError("required")
    if len(value) > max_length:
        raise FieldError("too_long", f"A name has at most {max_length} characters.")
    if any(ch.isdigit() for ch in value):
        raise FieldError("bad_format", "A name may not contain digits.")
    if not all(
        _NAME_CHAR_RE.fullmatch(ch) for ch in value
    ) or not _NAME_LETTER_RE.search(value):
        raise FieldError(
            "bad_format",
            "A name may contain only letters, spaces, '·', hyphens and apostrophes.",
        )
    return value


def validate_text(value: Any, max_length: int, required: bool = True) -> str:
    """Validate free text (an organisation name, an address); return it stripped.

    Inner whitespace (including line breaks) is collapsed to single spaces; control,
    format (e.g. bidirectional overrides), private-use and unassigned characters are
    refused. When not ``required`` a missing value cleans to ``""``.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise FieldError("required")
        return ""
    value = " ".join(unicodedata.normalize("NFC", _require_text(value)).split())
    if len(value) > max_length:
        raise FieldError("too_long", f"This field has at most {max_length} characters.")
    if any(unicodedata.category(ch) in _BAD_TEXT_CATEGORIES for ch in value):
        raise FieldError(
            "bad_format", "This field contains characters that are not allowed."
        )
    return value


def validate_code(value: Any) -> str:
    """Validate an SMS verification code: exactly 6 digits (surrounding spaces ignored)."""
    value = _require_text(value)
    if not _CODE_RE.fullmatch(value):
        raise FieldError("bad_format", "The code has exactly 6 digits.")
    return value


def validate_fields(
    data: Mapping[str, Any], spec: Mapping[str, Callable[[Any], Any]]
) -> dict:
    """Run each validator of ``spec`` on ``data.get(field)``, in spec order.

    Returns ``{field: cleaned value}`` for the fields of ``spec`` only (anything else in
    ``data`` is dropped: minimal collection). If any field fails, raises
    :class:`InvalidInput` listing every failing field: ``details`` is
    ``{"fields": {field: message}, "reasons": {field: code}}`` and ``field`` is the
    first failing one. A validator that raises a plain ``ValueError``/``TypeError``
    counts as ``required`` for a missing value (None or "") and ``bad_format``
    otherwise; its own message is not used, as it might quote the value.
    """
    if not isinstance(data, Mapping):
        raise InvalidInput("The request body must be a JSON object.")
    cleaned: dict[str, Any] = {}
    messages: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for name, validator in spec.items():
        raw = data.get(name)
        try:
            cleaned[name] = validator(raw)
        except FieldError as exc:
            messages[name], reasons[name] = exc.message, exc.code
        except (ValueError, TypeError):
            error = FieldError("required" if raw is None or raw == "" else "bad_format")
            messages[name], reasons[name] = error.message, error.code
    if messages:
        first = next(iter(messages))
        summary = "; ".join(f"{name}: {reason}" for name, reason in messages.items())
        # Built whole (not by mutating from_fields' result): details go into the
        # exception's args at construction, which is what crosses RPC.
        raise InvalidInput(
            summary, field=first, details={"fields": messages, "reasons": reasons}
        )
    return cleaned


def validate_id_type_or_default(value: Any) -> str:
    """A document type, ``resident_id`` when none is given (most people have one)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return "resident_id"
    return validate_id_type(value)


def person_spec(data: Mapping[str, Any], prefix: str = "") -> dict[str, Callable[[Any], Any]]:
    """The checks for the personal data we collect (name, document, phone), for
    :func:`validate_fields`; ``prefix`` as in ``admin_name``."""
    id_type = data.get(f"{prefix}id_type") if isinstance(data, Mapping) else None
    return {
        f"{prefix}name": validate_name,
        f"{prefix}id_type": validate_id_type_or_default,
        f"{prefix}id_number": lambda v: validate_id_number(id_type or "resident_id", v),
        f"{prefix}phone": validate_phone,
    }
