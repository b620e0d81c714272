"""Unit tests for shared.masking: the one masking rule for display and export."""

from __future__ import annotations

import pytest

from shared.masking import mask_id_number, mask_name, mask_phone


@pytest.mark.parametrize(
    "value, expected",
    [
        ("11010519491231002X", "1***************2X"),
        ("440524188001010014", "4***************14"),
        ("E12345678", "E******78"),
        ("H1234567890", "H********90"),
        ("12345678", "1*****78"),
        ("1234", "1*34"),
        ("123", "***"),
        ("12", "**"),
        ("1", "*"),
        ("", ""),
        (None, ""),
    ],
)
def test_mask_id_number(value, expected):
    assert mask_id_number(value) == expected


def test_mask_id_number_keeps_length_and_hides_the_middle():
    masked = mask_id_number("11010519491231002X")
    assert len(masked) == 18
    assert masked.count("*") == 15
    assert "19491231" not in masked


@pytest.mark.parametrize(
    "value, expected",
    [
        ("13812345678", "138****5678"),
        ("19900001111", "199****1111"),
        ("1234567890", "12******90"),
        ("123456789012", "12********12"),
        ("12345", "12*45"),
        ("1234", "****"),
        ("12", "**"),
        ("", ""),
        (None, ""),
    ],
)
def test_mask_phone(value, expected):
    assert mask_phone(value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("张三", "张*"),
        ("欧阳娜娜", "欧***"),
        ("李", "李"),
        ("阿卜杜拉·艾买提", "阿*******"),
        ("𠮷田", "𠮷*"),
        ("John Smith", "J*** S****"),
        ("John", "J***"),
        ("  John   Smith ", "J*** S****"),
        ("Mary-Jane O'Neil", "M******** O*****"),
        ("J", "J"),
        ("", ""),
        ("   ", ""),
        (None, ""),
    ],
)
def test_mask_name(value, expected):
    assert mask_name(value) == expected
