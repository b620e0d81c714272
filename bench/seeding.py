"""Putting many people straight into the stores, fast (COPY), for the benchmarks that
need more data than the join flow could make in time.

- people: :func:`shared.healthkit.seed.synthetic_residents` (unique resident IDs and
  phones, the simulator's own mix of health data), excluding those already stored;
- their person refs and sealed IDs exactly as the services make them
  (``crypto.person_ref("resident_id", id)``; ``crypto.master.encrypt_text(id,
  aad=person_ref)`` as ``Comparison.member_joined`` does), in a process pool when
  there are many;
- :func:`copy_rows`: one ``COPY … FROM STDIN (FORMAT csv)`` per table.
"""

from __future__ import annotations

import csv
import io
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from typing import Iterable, Sequence

from shared.config import load_settings
from shared.crypto import Crypto
from shared.healthkit.seed import Resident, synthetic_residents

RESIDENT_COLUMNS = (
    "id_number", "id_type", "name", "phone", "code_status", "popup",
    "last_test_sampled_at", "last_test_result", "vaccination", "updated_at",
)
POOL_THRESHOLD = 50_000  # below this, one process is quicker than starting a pool


def stack_crypto(env: dict[str, str]) -> Crypto:
    """The stack's keys (the services read the same environment)."""
    return Crypto(load_settings(env))


def _cell(value) -> object:
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()  # bytea hex input; CSV needs no escaping of it
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def copy_rows(cur, table: str, columns: Sequence[str], rows: Iterable[Sequence], chunk: int = 200_000) -> int:
    """COPY ``rows`` into ``table`` in chunks of ``chunk`` rows; returns the count."""
    total = 0
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    pending = 0

    def flush() -> None:
        buf.seek(0)
        cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)", buf)
        buf.seek(0)
        buf.truncate()

    for row in rows:
        writer.writerow([_cell(v) for v in row])
        pending += 1
        total += 1
        if pending >= chunk:
            flush()
            pending = 0
    if pending:
        flush()
    return total


def existing_residents(cur) -> tuple[set[str], set[str]]:
    cur.execute("SELECT id_number, phone FROM healthkit_sim.residents")
    ids, phones = set(), set()
    for id_number, phone in cur:
        ids.add(id_number)
        phones.add(phone)
    return ids, phones


def new_people(cur, count: int, rng_seed: int, now: datetime | None = None) -> list[Resident]:
    """``count`` synthetic residents none of whom the simulator's store already holds."""
    ids, phones = existing_residents(cur)
    return list(synthetic_residents(count, rng_seed=rng_seed, now=now, exclude_ids=ids, exclude_phones=phones))


# -- person refs and sealed IDs, in parallel -------------------------------------------------

_worker_crypto: Crypto | None = None


def _init_worker(env: dict[str, str]) -> None:
    global _worker_crypto
    _worker_crypto = stack_crypto(env)


def _seal_chunk(id_numbers: list[str]) -> list[tuple[str, bytes]]:
    c = _worker_crypto
    out = []
    for id_number in id_numbers:
        ref = c.person_ref("resident_id", id_number)
        out.append((ref, c.master.encrypt_text(id_number, aad=ref.encode())))
    return out


def person_refs_and_sealed_ids(env: dict[str, str], id_numbers: list[str]) -> list[tuple[str, bytes]]:
    """``[(person_ref, id_number_enc)]`` in the order of ``id_numbers``."""
    if len(id_numbers) < POOL_THRESHOLD:
        _init_worker(env)
        return _seal_chunk(id_numbers)
    workers = max(1, min(4, os.cpu_count() or 1))
    size = -(-len(id_numbers) // (workers * 4))
    chunks = [id_numbers[i : i + size] for i in range(0, len(id_numbers), size)]
    out: list[tuple[str, bytes]] = []
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(env,)) as pool:
        for part in pool.map(_seal_chunk, chunks):
            out.extend(part)
    return out


def _open_chunk(rows: list[tuple[str, bytes]]) -> list[tuple[str, str]]:
    c = _worker_crypto
    return [(ref, c.master.decrypt_text(enc, aad=ref.encode())) for ref, enc in rows]


def open_sealed_ids(env: dict[str, str], rows: list[tuple[str, bytes]]) -> list[tuple[str, str]]:
    """``[(person_ref, id_number)]`` from healthsync.subjects' ``(person_ref, id_number_enc)``."""
    if len(rows) < POOL_THRESHOLD:
        _init_worker(env)
        return _open_chunk(rows)
    workers = max(1, min(4, os.cpu_count() or 1))
    size = -(-len(rows) // (workers * 4))
    chunks = [rows[i : i + size] for i in range(0, len(rows), size)]
    out: list[tuple[str, str]] = []
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(env,)) as pool:
        for part in pool.map(_open_chunk, chunks):
            out.extend(part)
    return out
