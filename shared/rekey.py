"""Re-encrypting what the master key protects, so that a retired master key can go.

    python -m shared.rekey            # which master keys protect how many values, where
    python -m shared.rekey --apply    # re-encrypt every value under an older master key

Rotating the master key: add the new key to ``TUANTIBU_MASTER_KEYS`` and make it current
(``TUANTIBU_MASTER_KEY_ID``); restart the services, so that new values go under it; run
``--apply``; once the report says the old key protects nothing, remove it from
``TUANTIBU_MASTER_KEYS`` (and from every backup's reach, if it leaked).

The master key encrypts only a few things itself: each ledger's data keys (org's and
member's, wrapped), healthsync's ID numbers, and verify's phones (of people who passed
verification, and of challenges still open). Everything else is encrypted under a
ledger's data key, which does not change when its wrapping does.

Safe while the services run: a value is replaced only if it is still the one that was
read (compare and set), in batches of one transaction each; a value the services
rewrote meanwhile is already under the current key.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Callable

import psycopg2
import psycopg2.extras

from shared.config import settings
from shared.crypto import Crypto, DecryptionError


@dataclass(frozen=True)
class Protected:
    """A column of values encrypted under the master key, with the AAD each was
    encrypted with (derived from the row's primary key, as the owning service does)."""

    table: str
    column: str
    key: str
    aad: Callable[[str], str]


PROTECTED = (
    Protected("org.ledger_keys", "wrapped_key", "ledger_id", lambda ledger_id: f"ledger:{ledger_id}"),
    Protected("member.ledger_keys", "wrapped_key", "ledger_id", lambda ledger_id: f"member-ledger:{ledger_id}"),
    Protected("healthsync.subjects", "id_number_enc", "person_ref", lambda person_ref: person_ref),
    Protected("verify.identities", "phone_enc", "person_ref", lambda person_ref: person_ref),
    Protected("verify.challenges", "phone_enc", "id", lambda challenge_id: challenge_id),
)
BATCH = 500


def key_usage(conn) -> dict[str, dict[str, int]]:
    """{table.column: {master key id: values under it}}."""
    usage = {}
    with conn.cursor() as cur:
        for p in PROTECTED:
            cur.execute(
                f"SELECT convert_from(substring({p.column} FROM 3 FOR get_byte({p.column}, 1)), 'SQL_ASCII'), count(*) "
                f"FROM {p.table} WHERE {p.column} IS NOT NULL AND length({p.column}) > 2 GROUP BY 1"
            )
            usage[f"{p.table}.{p.column}"] = {key_id: n for key_id, n in cur.fetchall()}
    conn.rollback()
    return usage


def reencrypt(conn, crypto: Crypto) -> dict[str, tuple[int, int]]:
    """Every value not under the current master key, re-encrypted under it.

    Returns {table.column: (re-encrypted, unreadable)}: unreadable values (a key id no
    longer configured, or damage) are left as they are and counted."""
    master, done = crypto.master, {}
    prefix = master.current_prefix
    for p in PROTECTED:
        changed = unreadable = 0
        after = ""
        while True:
            with conn, conn.cursor() as cur:
                cur.execute(
                    f"SELECT {p.key}, {p.column} FROM {p.table} WHERE {p.column} IS NOT NULL "
                    f"AND substring({p.column} FROM 1 FOR %s) <> %s AND {p.key} > %s ORDER BY {p.key} LIMIT %s",
                    (len(prefix), prefix, after, BATCH),
                )
                rows = cur.fetchall()
                if not rows:
                    break
                after = rows[-1][0]
                updates = []
                for key, blob in rows:
                    aad = p.aad(key).encode()
                    try:
                        updates.append((master.encrypt(master.decrypt(blob, aad), aad), key, blob))
                    except DecryptionError:
                        unreadable += 1
                psycopg2.extras.execute_batch(
                    cur, f"UPDATE {p.table} SET {p.column} = %s WHERE {p.key} = %s AND {p.column} = %s", updates
                )
                changed += len(updates)
        done[f"{p.table}.{p.column}"] = (changed, unreadable)
    return done


def verdict(usage: dict[str, dict[str, int]], crypto: Crypto, configured: list[str]) -> list[str]:
    """What the operator may do next, key by key."""
    current = crypto.master.current_key_id
    totals: dict[str, int] = {}
    for by_key in usage.values():
        for key_id, n in by_key.items():
            totals[key_id] = totals.get(key_id, 0) + n
    lines = []
    for key_id in sorted(set(totals) | set(configured)):
        n = totals.get(key_id, 0)
        if key_id == current:
            lines.append(f"{key_id} (current) protects {n} value(s)")
        elif key_id not in configured:
            lines.append(f"{key_id} is not in TUANTIBU_MASTER_KEYS, yet {n} value(s) are under it: they are unreadable")
        elif n:
            lines.append(f"{key_id} still protects {n} value(s): run python -m shared.rekey --apply, then look again")
        else:
            lines.append(f"{key_id} protects nothing: it can be removed from TUANTIBU_MASTER_KEYS")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.rekey", description=__doc__.splitlines()[0])
    parser.add_argument("--apply", action="store_true", help="re-encrypt every value under an older master key")
    args = parser.parse_args(argv)
    config = settings()
    crypto = Crypto(config)
    conn = psycopg2.connect(config.database_url)
    try:
        if args.apply:
            for where, (changed, unreadable) in reencrypt(conn, crypto).items():
                print(f"{where}: {changed} re-encrypted" + (f", {unreadable} unreadable (left as they are)" if unreadable else ""))
            print()
        usage = key_usage(conn)
    finally:
        conn.close()
    for where, by_key in usage.items():
        print(f"{where:<36} " + (", ".join(f"{k}: {n}" for k, n in sorted(by_key.items())) or "nothing stored"))
    print()
    for line in verdict(usage, crypto, list(config.master_keys)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
