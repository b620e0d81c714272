"""Command line for the Health Kit simulator.

    python -m shared.healthkit serve                 # run it on HEALTHKIT_SIM_ADDRESS
    python -m shared.healthkit seed --count 100000   # add synthetic residents (+ demo people)
    python -m shared.healthkit seed --count 200 --if-empty
    python -m shared.healthkit demo                  # who to type in when trying the system

The store is the ``healthkit_sim`` schema of ``DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time


def _engine():
    from shared.config import settings

    from .simulator import make_store_engine

    return make_store_engine(settings().database_url, pool_size=2)


def cmd_serve(args: argparse.Namespace) -> int:
    from .simulator import serve

    serve()
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from .seed import seed, seed_if_empty

    engine = _engine()
    kwargs = {"rng_seed": args.rng_seed, "include_demo": not args.no_demo}
    if not args.if_empty:
        def progress(done: int, total: int) -> None:
            print(f"  {done:,}/{total:,}", file=sys.stderr)

        kwargs["progress"] = progress
    started = time.perf_counter()
    try:
        if args.if_empty:
            added = seed_if_empty(engine, args.count, **kwargs)
        else:
            added = seed(engine, args.count, **kwargs)
    finally:
        engine.dispose()
    elapsed = time.perf_counter() - started
    if args.if_empty and added == 0 and args.count:
        print("The Health Kit store already has residents; nothing seeded.")
    else:
        print(f"Added {added:,} synthetic residents in {elapsed:.1f} s.")
    if not args.no_demo and (added or not args.if_empty):
        print("Demo people are in place: python -m shared.healthkit demo")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .seed import DEMO_RESIDENTS

    print("Demo residents of the Health Kit simulator (all green, tested yesterday, booster):")
    print(f"  {'name':<6}{'resident ID':<20}phone")
    for person in DEMO_RESIDENTS:
        print(f"  {person.name:<5}{person.id_number:<20}{person.phone}")
    print("SMS codes sent to them: python -m shared.sms --phone <phone>")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.healthkit", description="Health Kit simulator"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the simulator on HEALTHKIT_SIM_ADDRESS").set_defaults(
        func=cmd_serve
    )
    p_seed = sub.add_parser("seed", help="add synthetic residents to the simulator's store")
    p_seed.add_argument("--count", type=int, required=True, help="how many residents")
    p_seed.add_argument(
        "--if-empty", action="store_true", help="only if the store has no residents yet"
    )
    p_seed.add_argument("--rng-seed", type=int, default=None, help="seed of the generator")
    p_seed.add_argument("--no-demo", action="store_true", help="skip the demo people")
    p_seed.set_defaults(func=cmd_seed)
    sub.add_parser("demo", help="print the demo residents").set_defaults(func=cmd_demo)
    args = parser.parse_args(argv)
    if getattr(args, "count", 0) is not None and getattr(args, "count", 0) < 0:
        parser.error("--count must be zero or more")
    if getattr(args, "rng_seed", 0) is None:
        from .seed import DEFAULT_RNG_SEED

        args.rng_seed = DEFAULT_RNG_SEED
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
