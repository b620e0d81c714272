"""Benchmarks for Tuantibu: ``make bench`` / ``python -m bench``.

Each run starts a private stack (fresh PostgreSQL database, fresh RabbitMQ vhost, free
ports, migrations, seeded Health Kit simulator) exactly as the end-to-end tests do,
drives it over HTTP, prints a table, merges its figures into ``bench/results.json``
under the benchmark's name, and tears the stack down (even on Ctrl-C or failure).
"""
