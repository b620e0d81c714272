"""Synthetic people for tests: valid resident IDs and mainland phones, unique per call."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from shared.validation import resident_id_check_digit

_rng = random.SystemRandom()


@dataclass
class Person:
    name: str
    id_number: str
    phone: str


def resident_id() -> str:
    birth = datetime(1960, 1, 1) + timedelta(days=_rng.randrange(0, 365 * 45))
    first17 = f"110101{birth:%Y%m%d}{_rng.randrange(0, 1000):03d}"
    return first17 + resident_id_check_digit(first17)


def phone() -> str:
    return f"1{_rng.choice('3589')}{_rng.randrange(0, 10**9):09d}"


def person(name: str = "测试员") -> Person:
    return Person(name=name, id_number=resident_id(), phone=phone())


def health_record(p: Person, **overrides) -> dict:
    record = {
        "name": p.name,
        "phone": p.phone,
        "id_type": "resident_id",
        "code_status": "green",
        "popup": None,
        "last_test_sampled_at": (datetime.now(timezone.utc) - timedelta(hours=20)).isoformat(),
        "last_test_result": "negative",
        "vaccination": "booster",
    }
    record.update(overrides)
    return record
