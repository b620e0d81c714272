"""Synthetic residents for the Health Kit simulator.

``seed(engine, count)`` writes ``count`` made-up residents into ``healthkit_sim`` in
batches (COPY into a temporary table, then one set-based INSERT per batch), plus the
three demo people below. Everything comes from a seeded RNG, so the same ``rng_seed``
gives the same people; seeding again with it adds nothing twice (ID numbers and phones
already in the store are skipped).

What a synthetic resident looks like:

- a common Chinese surname (weighted: 王, 李, 张 … most often) and a one- or
  two-character given name;
- a valid 18-digit resident ID: a real region code (about half Beijing districts, the
  rest big-city districts elsewhere), a birth date in 1945–2015, a 3-digit sequence,
  the GB 11643 check digit; unique;
- a unique mainland mobile number (prefixes 130–139, 150–159 without 154, 180–189, 199);
- health: ~90 % green, ~6 % yellow, ~2 % red, ~2 % green with a pop-up (弹窗一/二/三);
  last nucleic-acid test sampled 0–10 days ago, ~87 % negative, ~7 % pending (sampled
  in the last 30 hours), ~3 % no test on record, ~0.1 % positive (those are red);
  vaccination ~72 % booster, ~16 % primary, ~4 % incomplete, ~3 % unsuitable,
  ~5 % none found.

Demo people (:data:`DEMO_RESIDENTS`), always green, negative test sampled yesterday
10:00 Beijing time, booster — use them to try the join flow by hand:

======  ==================  ===========
name    resident ID         phone
======  ==================  ===========
张伟    110101199003071233  13800138000
李娜    31010419881121234X  13900139000
王芳    440305199506152361  13700137000
======  ==================  ===========
"""

from __future__ import annotations

import bisect
import io
import logging
import random
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Iterator, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine

from shared.validation import resident_id_check_digit

from . import POPUP_KINDS
from .simulator import SCHEMA, ensure_schema, record_changes, residents

log = logging.getLogger("shared.healthkit.seed")

DEFAULT_RNG_SEED = 20220601
CST = timezone(timedelta(hours=8), "CST")


class Resident(NamedTuple):
    """One row of ``healthkit_sim.residents``."""

    id_number: str
    id_type: str
    name: str
    phone: str
    code_status: str
    popup: str | None
    last_test_sampled_at: datetime | None
    last_test_result: str | None
    vaccination: str
    updated_at: datetime


class DemoResident(NamedTuple):
    name: str
    id_number: str
    phone: str


DEMO_RESIDENTS: tuple[DemoResident, ...] = (
    DemoResident("张伟", "110101199003071233", "13800138000"),
    DemoResident("李娜", "31010419881121234X", "13900139000"),
    DemoResident("王芳", "440305199506152361", "13700137000"),
)

# (surname, relative frequency in per mille of the population, roughly)
_SURNAMES = (
    ("王", 71), ("李", 70), ("张", 68), ("刘", 54), ("陈", 46), ("杨", 31), ("黄", 22),
    ("赵", 20), ("吴", 20), ("周", 19), ("徐", 15), ("孙", 15), ("马", 14), ("朱", 13),
    ("胡", 13), ("郭", 12), ("何", 12), ("高", 11), ("林", 11), ("罗", 10), ("郑", 10),
    ("梁", 10), ("谢", 8), ("宋", 8), ("唐", 8), ("许", 7), ("韩", 7), ("冯", 7),
    ("邓", 7), ("曹", 7), ("彭", 6), ("曾", 6), ("肖", 6), ("田", 6), ("董", 6),
    ("袁", 5), ("潘", 5), ("于", 5), ("蒋", 5), ("蔡", 5), ("余", 5), ("杜", 5),
    ("叶", 5), ("程", 5), ("苏", 4), ("魏", 4), ("吕", 4), ("丁", 4), ("任", 4),
    ("沈", 4), ("姚", 4), ("卢", 4), ("姜", 4), ("崔", 4), ("钟", 4), ("谭", 3),
    ("陆", 3), ("汪", 3), ("范", 3), ("金", 3), ("石", 3), ("廖", 3), ("贾", 3),
    ("夏", 3), ("韦", 3), ("付", 3), ("方", 3), ("白", 3), ("邹", 3), ("孟", 3),
    ("熊", 3), ("秦", 3), ("邱", 3), ("江", 3), ("尹", 3), ("薛", 2), ("闫", 2),
    ("段", 2), ("雷", 2), ("侯", 2), ("龙", 2), ("史", 2), ("陶", 2), ("黎", 2),
    ("贺", 2), ("顾", 2), ("毛", 2), ("郝", 2), ("龚", 2), ("邵", 2), ("万", 2),
    ("钱", 2), ("严", 2), ("武", 2), ("戴", 2), ("孔", 1), ("向", 1), ("汤", 1),
    ("欧阳", 1), ("司马", 1), ("诸葛", 1),
)
SURNAMES = tuple(name for name, _ in _SURNAMES)

GIVEN_NAME_CHARS = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红玲芬燕彬鹏辉建国宇浩然"
    "子轩梓涵欣怡雨思诺晨博文俊嘉佳琪雪婷鑫宁倩颖琳晶丹慧阳斌飞林毅瑞海峰波亮晓东云"
    "龙凤春梅兵志宏新天泽昊睿可心悦安乐诗语铭楠宸彤晗妍雅婧泓健康永光德福荣贵成庆金"
    "淑珍凯旭蕾薇璐莉洁敬振松柏立忠义秋菊兴昌彦鸿翔"
)

# Real 6-digit region codes: Beijing districts, then district codes of other big cities.
BEIJING_REGIONS = (
    "110101", "110102", "110105", "110106", "110107", "110108", "110109", "110111",
    "110112", "110113", "110114", "110115", "110116", "110117", "110118", "110119",
)
OTHER_REGIONS = (
    "120101", "120103", "130102", "130104", "140105", "150102", "210102", "210202",
    "220102", "230103", "310101", "310104", "310105", "310115", "320102", "320505",
    "330106", "330108", "340104", "350203", "360102", "370102", "370202", "410105",
    "420106", "420111", "430104", "440103", "440106", "440304", "440305", "450103",
    "460105", "500103", "500106", "510104", "510107", "520102", "530102", "540102",
    "610113", "620102", "630103", "640104", "650102",
)

MOBILE_PREFIXES = tuple(
    [str(p) for p in range(130, 140)]
    + [str(p) for p in range(150, 160) if p != 154]  # 154 was never assigned
    + [str(p) for p in range(180, 190)]
    + ["199"]
)

_FIRST_BIRTH = date(1945, 1, 1)
_LAST_BIRTH = date(2015, 12, 31)
_BIRTH_DATES = tuple(
    (_FIRST_BIRTH + timedelta(days=n)).strftime("%Y%m%d")
    for n in range((_LAST_BIRTH - _FIRST_BIRTH).days + 1)
)

_VACCINATIONS = ("booster", "primary", "incomplete", "unsuitable", "none_found")
_VACCINATION_CUM = (72, 88, 92, 95, 100)
_SURNAME_CUM = tuple(sum(w for _, w in _SURNAMES[: i + 1]) for i in range(len(_SURNAMES)))

_COLUMNS = (
    "id_number", "id_type", "name", "phone", "code_status", "popup",
    "last_test_sampled_at", "last_test_result", "vaccination", "updated_at",
)
_DAY = 86400.0


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def synthetic_residents(
    count: int,
    rng_seed: int = DEFAULT_RNG_SEED,
    now: datetime | None = None,
    exclude_ids: frozenset[str] | set[str] = frozenset(),
    exclude_phones: frozenset[str] | set[str] = frozenset(),
) -> Iterator[Resident]:
    """Yield ``count`` synthetic residents with unique IDs and phones (none of them in
    ``exclude_ids`` / ``exclude_phones``, nor a demo person's). Deterministic for a
    given ``rng_seed``: a longer run starts with the same people as a shorter one."""
    if count < 0:
        raise ValueError("count must be zero or more")
    now = now or _utcnow()
    rng = random.Random(rng_seed)
    rand, choice, randrange = rng.random, rng.choice, rng.randrange
    used_ids = {d.id_number for d in DEMO_RESIDENTS} | set(exclude_ids)
    used_phones = {d.phone for d in DEMO_RESIDENTS} | set(exclude_phones)
    surname_cum, surname_total = _SURNAME_CUM, _SURNAME_CUM[-1]
    made = 0
    while made < count:
        # ID number: region + birth date + sequence + check digit.
        region = choice(BEIJING_REGIONS) if rand() < 0.5 else choice(OTHER_REGIONS)
        first17 = f"{region}{choice(_BIRTH_DATES)}{randrange(1, 1000):03d}"
        id_number = first17 + resident_id_check_digit(first17)
        phone = f"{choice(MOBILE_PREFIXES)}{randrange(100_000_000):08d}"
        surname = SURNAMES[bisect.bisect_right(surname_cum, randrange(surname_total))]
        given = choice(GIVEN_NAME_CHARS)
        if rand() < 0.7:
            given += choice(GIVEN_NAME_CHARS)
        roll, test_roll, vaccine_roll = rand(), rand(), randrange(100)
        if id_number in used_ids or phone in used_phones:
            continue
        used_ids.add(id_number)
        used_phones.add(phone)

        popup = None
        if roll < 0.90:
            code = "green"
        elif roll < 0.96:
            code = "yellow"
        elif roll < 0.98:
            code = "red"
        else:
            code = "green"
            popup = POPUP_KINDS[int((roll - 0.98) / 0.02 * len(POPUP_KINDS)) % len(POPUP_KINDS)]

        if test_roll < 0.03:
            sampled, result = None, None
        elif test_roll < 0.10:
            sampled, result = now - timedelta(seconds=rand() * 1.25 * _DAY), "pending"
        elif test_roll < 0.101:
            sampled, result = now - timedelta(seconds=(1 + rand() * 2) * _DAY), "positive"
            code, popup = "red", None
        else:
            sampled, result = now - timedelta(seconds=rand() * 10 * _DAY), "negative"
        vaccination = _VACCINATIONS[bisect.bisect_right(_VACCINATION_CUM, vaccine_roll)]

        yield Resident(
            id_number, "resident_id", surname + given, phone, code, popup,
            sampled, result, vaccination, now,
        )
        made += 1


def demo_records(now: datetime | None = None) -> list[Resident]:
    """The demo people as full records: green, negative test sampled yesterday at 10:00
    Beijing time, booster."""
    now = now or _utcnow()
    yesterday = (now.astimezone(CST) - timedelta(days=1)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    return [
        Resident(
            d.id_number, "resident_id", d.name, d.phone, "green", None,
            yesterday.astimezone(timezone.utc), "negative", "booster", now,
        )
        for d in DEMO_RESIDENTS
    ]


def _copy_line(r: Resident) -> str:
    def cell(value: object) -> str:
        if value is None:
            return "\\N"
        if isinstance(value, datetime):
            return value.isoformat()
        return str(value)

    return "\t".join(cell(v) for v in r) + "\n"


def upsert_demo_residents(engine: Engine, now: datetime | None = None) -> int:
    """Create or reset the demo people (recording a change for each)."""
    ensure_schema(engine)
    rows = [r._asdict() for r in demo_records(now)]
    stmt = postgresql.insert(residents).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=[residents.c.id_number],
        set_={c: stmt.excluded[c] for c in _COLUMNS if c != "id_number"},
    )
    with engine.begin() as conn:
        conn.execute(stmt)
        record_changes(conn, [r["id_number"] for r in rows])
    return len(rows)


def seed(
    engine: Engine,
    count: int,
    rng_seed: int = DEFAULT_RNG_SEED,
    include_demo: bool = True,
    batch_size: int = 50_000,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Insert ``count`` synthetic residents (and upsert the demo people if
    ``include_demo``). Returns how many synthetic residents were added: fewer than
    ``count`` only where an ID number or phone was already in the store.

    Each batch is one COPY into a temporary table and one INSERT … SELECT, committed
    on its own; ``progress(done, count)`` is called after each batch.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    ensure_schema(engine)
    now = now or _utcnow()
    added = 0
    done = 0
    people = synthetic_residents(count, rng_seed=rng_seed, now=now)
    columns = ", ".join(_COLUMNS)
    target = f"{SCHEMA}.residents"
    while done < count:
        batch = [r for _, r in zip(range(min(batch_size, count - done)), people)]
        if not batch:
            break
        buffer = io.StringIO("".join(_copy_line(r) for r in batch))
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute(
                f"CREATE TEMP TABLE healthkit_seed_batch (LIKE {target}) ON COMMIT DROP"
            )
            cur.copy_expert(f"COPY healthkit_seed_batch ({columns}) FROM STDIN", buffer)
            cur.execute(
                f"INSERT INTO {target} ({columns}) SELECT {columns} FROM healthkit_seed_batch b "
                f"WHERE NOT EXISTS (SELECT 1 FROM {target} r WHERE r.phone = b.phone) "
                "ON CONFLICT (id_number) DO NOTHING"
            )
            added += cur.rowcount
            cur.close()
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
        finally:
            raw.close()
        done += len(batch)
        if progress:
            progress(done, count)
    if count:
        with engine.begin() as conn:
            conn.execute(sa.text(f"ANALYZE {target}"))
    if include_demo:
        upsert_demo_residents(engine, now)
    log.info("seeded %d synthetic residents (%d asked)", added, count)
    return added


def seed_if_empty(engine: Engine, count: int, **kwargs) -> int:
    """Seed (as :func:`seed`) only if the store has no residents; returns how many
    synthetic residents were added (0 if it was not empty)."""
    ensure_schema(engine)
    with engine.connect() as conn:
        occupied = conn.execute(sa.select(sa.exists().select_from(residents))).scalar()
    if occupied:
        return 0
    return seed(engine, count, **kwargs)
