"""Unit tests for shared.validation: the rules for the personal data we collect."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from shared.errors import InvalidInput
from shared.validation import (
    ID_TYPES,
    FieldError,
    resident_id_check_digit,
    validate_code,
    validate_fields,
    validate_id_number,
    validate_id_type,
    validate_name,
    validate_phone,
    validate_resident_id,
    validate_text,
)


def _with_check_digit(first17: str) -> str:
    return first17 + resident_id_check_digit(first17)


def test_id_types():
    assert ID_TYPES == ("resident_id", "passport", "hk_macao_permit", "taiwan_permit")


@pytest.mark.parametrize(
    "first17, expected",
    [
        ("11010519491231002", "X"),  # GB 11643-1999 example
        ("44052418800101001", "4"),  # GB 11643-1999 example
        ("11010119900307001", "1"),
        ("31011520000229123", "5"),
        ("51342219851103567", "8"),
    ],
)
def test_resident_id_check_digit(first17, expected):
    assert resident_id_check_digit(first17) == expected


@pytest.mark.parametrize("bad", ["", "1234", "1101051949123100X", "110105194912310021"])
def test_resident_id_check_digit_needs_17_digits(bad):
    with pytest.raises(ValueError):
        resident_id_check_digit(bad)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("11010519491231002X", "11010519491231002X"),
        ("11010519491231002x", "11010519491231002X"),
        ("  11010519491231002X\t", "11010519491231002X"),
        ("110101199003070011", "110101199003070011"),
        ("310115200002291235", "310115200002291235"),  # 29 Feb 2000, a leap year
        ("513422198511035678", "513422198511035678"),
        # as typed on a Chinese keyboard, or pasted in groups
        ("１１０１０５１９４９１２３１００２Ｘ", "11010519491231002X"),
        ("110105 19491231 002x", "11010519491231002X"),
        ("110105\u300019491231002X", "11010519491231002X"),  # an ideographic space
    ],
)
def test_valid_resident_ids(raw, expected):
    assert validate_resident_id(raw) == expected


@pytest.mark.parametrize(
    "raw, code",
    [
        (None, "required"),
        ("", "required"),
        ("   ", "required"),
        (11010519491231002, "bad_format"),
        ("11010519491231002", "bad_format"),  # 17 characters
        ("11010519491231002X1", "too_long"),
        ("1101051949123100XX", "bad_format"),
        ("X10105194912310021", "bad_format"),
        ("11010519491231002Y", "bad_format"),
        ("110105 19491231002", "bad_format"),  # 17 digits, spaced
        ("110105194912310021", "bad_check_digit"),
        ("110105194912310020", "bad_check_digit"),
        ("440524188001010015", "bad_birth_date"),  # 1880: before 1900
        # the GB 11643 example: a right check digit, but born 1880 (< MIN_BIRTH_YEAR)
        ("440524188001010014", "bad_birth_date"),
        (_with_check_digit("11010519491331002"), "bad_birth_date"),  # month 13
        (_with_check_digit("11010519490230002"), "bad_birth_date"),  # 30 February
        (
            _with_check_digit("11010520010229002"),
            "bad_birth_date",
        ),  # 2001 not a leap year
        (
            _with_check_digit("11010519000229002"),
            "bad_birth_date",
        ),  # 1900 not a leap year
        (_with_check_digit("11010500000101002"), "bad_birth_date"),
    ],
)
def test_invalid_resident_ids(raw, code):
    with pytest.raises(FieldError) as info:
        validate_resident_id(raw)
    assert info.value.code == code
    if isinstance(raw, str) and raw.strip():
        assert raw.strip() not in info.value.message


def test_resident_id_birth_date_in_future_is_rejected():
    tomorrow = date.today() + timedelta(days=1)
    with pytest.raises(FieldError) as info:
        validate_resident_id(_with_check_digit(f"110105{tomorrow:%Y%m%d}002"))
    assert info.value.code == "bad_birth_date"


def test_resident_id_born_today_is_accepted():
    number = _with_check_digit(f"110105{date.today():%Y%m%d}002")
    assert validate_resident_id(number) == number


@pytest.mark.parametrize(
    "id_type, raw, expected",
    [
        ("resident_id", "11010519491231002x", "11010519491231002X"),
        (" Resident_ID ", "11010519491231002X", "11010519491231002X"),
        ("passport", "E12345678", "E12345678"),
        ("passport", " e12345678 ", "E12345678"),
        ("passport", "E 1234 5678", "E12345678"),  # pasted in groups
        ("passport", "Ｅ１２３４５６７８", "E12345678"),  # full-width
        ("passport", "12345", "12345"),
        ("passport", "A" * 17, "A" * 17),
        ("hk_macao_permit", "H12345678", "H12345678"),
        ("hk_macao_permit", "m1234567890", "M1234567890"),
        ("taiwan_permit", "12345678", "12345678"),
        ("taiwan_permit", "1234567890", "1234567890"),
    ],
)
def test_valid_id_numbers(id_type, raw, expected):
    assert validate_id_number(id_type, raw) == expected


@pytest.mark.parametrize(
    "id_type, raw, code",
    [
        ("resident_id", "110105194912310021", "bad_check_digit"),
        ("passport", "", "required"),
        ("passport", None, "required"),
        ("passport", "E123", "bad_format"),
        ("passport", "A" * 18, "too_long"),
        ("passport", "E1234-5678", "bad_format"),
        ("passport", "E-12345678", "bad_format"),
        ("hk_macao_permit", "X12345678", "bad_format"),
        ("hk_macao_permit", "H1234567", "bad_format"),
        ("hk_macao_permit", "H123456789", "bad_format"),  # 9 digits
        ("hk_macao_permit", "12345678", "bad_format"),
        ("taiwan_permit", "1234567", "bad_format"),
        ("taiwan_permit", "123456789", "bad_format"),
        ("taiwan_permit", "T1234567", "bad_format"),
        ("driving_licence", "12345678", "unknown_id_type"),
        ("", "12345678", "unknown_id_type"),
        (None, "12345678", "unknown_id_type"),
    ],
)
def test_invalid_id_numbers(id_type, raw, code):
    with pytest.raises(FieldError) as info:
        validate_id_number(id_type, raw)
    assert info.value.code == code


@pytest.mark.parametrize(
    "raw, expected, code",
    [
        ("passport", "passport", None),
        (" HK_Macao_Permit ", "hk_macao_permit", None),
        ("visa", None, "unknown_id_type"),
        (None, None, "required"),
    ],
)
def test_validate_id_type(raw, expected, code):
    if code is None:
        assert validate_id_type(raw) == expected
    else:
        with pytest.raises(FieldError) as info:
            validate_id_type(raw)
        assert info.value.code == code


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("13812345678", "13812345678"),
        (" 13812345678 ", "13812345678"),
        ("138 1234 5678", "13812345678"),
        ("138-1234-5678", "13812345678"),
        ("+8613812345678", "13812345678"),
        ("+86 138 1234 5678", "13812345678"),
        ("+86-138-1234-5678", "13812345678"),
        ("8613812345678", "13812345678"),
        ("86 13812345678", "13812345678"),
        ("19912345678", "19912345678"),
        ("16612345678", "16612345678"),
        ("１３８１２３４５６７８", "13812345678"),  # full-width digits
        ("１３８　１２３４　５６７８", "13812345678"),
    ],
)
def test_valid_phones(raw, expected):
    assert validate_phone(raw) == expected


@pytest.mark.parametrize(
    "raw, code",
    [
        (None, "required"),
        ("", "required"),
        (" - ", "required"),
        (13812345678, "bad_format"),
        ("138123456789", "not_mainland_mobile"),  # 12 digits
        ("1381234567", "not_mainland_mobile"),  # 10 digits
        ("23812345678", "not_mainland_mobile"),  # starts with 2
        ("21234567890", "not_mainland_mobile"),
        ("12812345678", "not_mainland_mobile"),  # second digit 2
        ("02161234567", "not_mainland_mobile"),  # landline
        ("+85291234567", "not_mainland_mobile"),  # Hong Kong
        ("+8623812345678", "not_mainland_mobile"),
        ("+1 415 555 0100", "not_mainland_mobile"),
        ("138(1234)5678", "bad_format"),
        ("1381234567a", "bad_format"),
        ("86+13812345678", "bad_format"),
        ("++8613812345678", "bad_format"),
    ],
)
def test_invalid_phones(raw, code):
    with pytest.raises(FieldError) as info:
        validate_phone(raw)
    assert info.value.code == code
    if isinstance(raw, str) and raw.strip(" -"):
        assert raw not in info.value.message


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("张三", "张三"),
        ("  欧阳娜娜 ", "欧阳娜娜"),
        ("阿卜杜拉·艾买提", "阿卜杜拉·艾买提"),
        ("阿卜杜拉•艾买提", "阿卜杜拉·艾买提"),  # look-alike dot normalised
        ("阿卜杜拉・艾买提", "阿卜杜拉·艾买提"),
        ("John   Smith", "John Smith"),
        ("Mary-Jane O'Neil", "Mary-Jane O'Neil"),
        ("Mary-Jane O’Neil", "Mary-Jane O'Neil"),
        ("José Müller", "José Müller"),
        ("ＪＯＨＮ", "JOHN"),  # full-width letters
        ("王〇", "王〇"),
        ("𠮷田", "𠮷田"),  # CJK extension B
        ("李" * 30, "李" * 30),
    ],
)
def test_valid_names(raw, expected):
    assert validate_name(raw) == expected


@pytest.mark.parametrize(
    "raw, kwargs, code",
    [
        (None, {}, "required"),
        ("", {}, "required"),
        ("   ", {}, "required"),
        (42, {}, "bad_format"),
        ("李" * 31, {}, "too_long"),
        ("张三丰", {"max_length": 2}, "too_long"),
        ("张三3", {}, "bad_format"),
        ("Agent 007", {}, "bad_format"),
        ("张三３", {}, "bad_format"),  # full-width digit
        ("张\x00三", {}, "bad_format"),
        ("张\u200b三", {}, "bad_format"),  # zero-width space
        ("张三!", {}, "bad_format"),
        ("<script>", {}, "bad_format"),
        ("张三😀", {}, "bad_format"),
        ("·-'", {}, "bad_format"),  # no letter at all
    ],
)
def test_invalid_names(raw, kwargs, code):
    with pytest.raises(FieldError) as info:
        validate_name(raw, **kwargs)
    assert info.value.code == code
    if isinstance(raw, str) and raw.strip():
        assert raw.strip() not in info.value.message


@pytest.mark.parametrize(
    "raw, max_length, required, expected",
    [
        ("北京市朝阳区 某某科技有限公司", 60, True, "北京市朝阳区 某某科技有限公司"),
        ("  Acme\n  Ltd.  ", 60, True, "Acme Ltd."),
        (
            "北京市海淀区中关村大街1号（3层）",
            120,
            True,
            "北京市海淀区中关村大街1号（3层）",
        ),
        ("x" * 60, 60, True, "x" * 60),
        (None, 120, False, ""),
        ("   ", 120, False, ""),
        ("", 120, False, ""),
    ],
)
def test_valid_text(raw, max_length, required, expected):
    assert validate_text(raw, max_length, required=required) == expected


@pytest.mark.parametrize(
    "raw, max_length, code",
    [
        (None, 60, "required"),
        ("", 60, "required"),
        (" \t", 60, "required"),
        (["a"], 60, "bad_format"),
        ("x" * 61, 60, "too_long"),
        ("a\x07b", 60, "bad_format"),
        ("Acme\u202eLtd", 60, "bad_format"),  # bidi override (spoofing)
        ("Acme\ue000", 60, "bad_format"),  # private use
        ("Acme\ud800", 60, "bad_format"),  # lone surrogate
    ],
)
def test_invalid_text(raw, max_length, code):
    with pytest.raises(FieldError) as info:
        validate_text(raw, max_length)
    assert info.value.code == code


@pytest.mark.parametrize(
    "raw, expected", [("123456", "123456"), (" 000001 ", "000001")]
)
def test_valid_codes(raw, expected):
    assert validate_code(raw) == expected


@pytest.mark.parametrize(
    "raw, code",
    [
        (None, "required"),
        ("", "required"),
        (123456, "bad_format"),
        ("12345", "bad_format"),
        ("1234567", "bad_format"),
        ("12345a", "bad_format"),
        ("123 456", "bad_format"),
        ("１２３４５６", "bad_format"),
    ],
)
def test_invalid_codes(raw, code):
    with pytest.raises(FieldError) as info:
        validate_code(raw)
    assert info.value.code == code


def test_field_error_is_a_value_error_with_code_and_message():
    error = FieldError("required")
    assert isinstance(error, ValueError)
    assert error.code == "required"
    assert error.message and str(error) == error.message
    assert FieldError("too_long", "Custom.").message == "Custom."


def _join_spec(data):
    return {
        "name": validate_name,
        "id_type": validate_id_type,
        "id_number": lambda value: validate_id_number(data.get("id_type"), value),
        "phone": validate_phone,
    }


def test_validate_fields_returns_cleaned_values_only_for_the_spec():
    data = {
        "name": " 张三 ",
        "id_type": "resident_id",
        "id_number": "11010519491231002x",
        "phone": "+86 138 1234 5678",
        "extra": "dropped",
    }
    assert validate_fields(data, _join_spec(data)) == {
        "name": "张三",
        "id_type": "resident_id",
        "id_number": "11010519491231002X",
        "phone": "13812345678",
    }


def test_validate_fields_collects_every_error():
    data = {
        "name": "张三3",
        "id_type": "resident_id",
        "id_number": "110105194912310021",
        "phone": "138123456789",
    }
    with pytest.raises(InvalidInput) as info:
        validate_fields(
            data, {"org_name": lambda v: validate_text(v, 60), **_join_spec(data)}
        )
    error = info.value
    assert error.field == "org_name"
    assert error.details["reasons"] == {
        "org_name": "required",
        "name": "bad_format",
        "id_number": "bad_check_digit",
        "phone": "not_mainland_mobile",
    }
    assert list(error.details["fields"]) == ["org_name", "name", "id_number", "phone"]
    assert all(isinstance(m, str) and m for m in error.details["fields"].values())
    # no value the user typed appears anywhere in the error
    text = json.dumps(error.to_dict(), ensure_ascii=False) + str(error)
    for value in data.values():
        assert value not in text


def test_validate_fields_error_survives_rpc_serialisation():
    with pytest.raises(InvalidInput) as info:
        validate_fields(
            {"phone": "2"}, {"phone": validate_phone, "code": validate_code}
        )
    error = info.value
    rebuilt = InvalidInput(*error.args[:3], code=error.args[3])
    assert rebuilt.details == error.details
    assert rebuilt.details["reasons"] == {
        "phone": "not_mainland_mobile",
        "code": "required",
    }
    assert rebuilt.field == "phone"


@pytest.mark.parametrize("missing", [None, ""])
def test_validate_fields_missing_value_is_required_even_for_plain_validators(missing):
    with pytest.raises(InvalidInput) as info:
        validate_fields({"count": missing}, {"count": int})
    assert info.value.details["reasons"] == {"count": "required"}


def test_validate_fields_maps_plain_value_errors_to_bad_format_without_their_message():
    with pytest.raises(InvalidInput) as info:
        validate_fields({"count": "secret-value"}, {"count": int})
    assert info.value.details["reasons"] == {"count": "bad_format"}
    assert "secret-value" not in json.dumps(info.value.to_dict())


def test_validate_fields_optional_field():
    spec = {"address": lambda v: validate_text(v, 120, required=False)}
    assert validate_fields({}, spec) == {"address": ""}


def test_validate_fields_unknown_id_type_reported_on_both_fields():
    data = {"id_type": "visa", "id_number": "E12345678"}
    spec = {
        "id_type": validate_id_type,
        "id_number": lambda v: validate_id_number(data.get("id_type"), v),
    }
    with pytest.raises(InvalidInput) as info:
        validate_fields(data, spec)
    assert info.value.field == "id_type"
    assert info.value.details["reasons"] == {
        "id_type": "unknown_id_type",
        "id_number": "unknown_id_type",
    }


@pytest.mark.parametrize("body", [None, ["name"], "name"])
def test_validate_fields_rejects_a_body_that_is_not_an_object(body):
    with pytest.raises(InvalidInput):
        validate_fields(body, {"name": validate_name})
