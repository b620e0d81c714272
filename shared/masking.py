"""The one masking rule for personal data that is displayed or exported.

DESIGN.md ("Personal data"): members' data is masked everywhere it is shown or
exported, by one rule in one module, so no page or export invents its own (and leaks
more than the others). Names are shown in full to an organisation's admins; the only
masked name is an admin's, on the join page a person sees before joining.

    mask_id_number("11010519491231002X")  -> "1***************2X"
    mask_phone("13812345678")             -> "138****5678"
    mask_name("欧阳娜娜") -> "欧***";  mask_name("John Smith") -> "J*** S****"
"""

from __future__ import annotations

import re

STAR = "*"

_CJK_RE = re.compile(
    "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f\u3007]"
)


def mask_id_number(value: str | None) -> str:
    """Keep the first character and the last two; star the rest (all stars if ≤ 3 long)."""
    if not value:
        return ""
    if len(value) <= 3:
        return STAR * len(value)
    return value[0] + STAR * (len(value) - 3) + value[-2:]


def mask_phone(value: str | None) -> str:
    """11 characters: first 3, four stars, last 4; otherwise keep the first 2 and last 2.

    Values of 4 characters or fewer are all stars (keeping 2 + 2 would show them whole).
    """
    if not value:
        return ""
    if len(value) == 11:
        return value[:3] + STAR * 4 + value[-4:]
    if len(value) <= 4:
        return STAR * len(value)
    return value[:2] + STAR * (len(value) - 4) + value[-2:]


def mask_name(value: str | None) -> str:
    """Mask a name: a Chinese-style name keeps its first character ("张三" -> "张*");
    a Latin name keeps the first letter of each word ("John Smith" -> "J*** S****")."""
    if not value:
        return ""
    value = value.strip()
    if _CJK_RE.search(value):
        return value[0] + STAR * (len(value) - 1)
    return " ".join(word[0] + STAR * (len(word) - 1) for word in value.split())
