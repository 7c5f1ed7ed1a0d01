"""COPY load rate of ``refarch.db.load.load_products`` into a real local PostgreSQL server.

For each size (default 100,000 and 1,000,000 generated products) it measures, in one run:

* generation alone (the baseline: iterating ``generate_products(n)``, no database);
* the streaming load a user runs (``refarch load --generate N``): generation and loading
  together, memory bounded, into an empty table;
* the database part alone: products generated ahead in chunks of 100,000 and only
  ``load_products`` timed, into an empty table (so generation is excluded, as the rate the
  loader itself achieves);
* a reload of the same products (all unchanged: the idempotent path);
* peak RSS of this process after the streaming loads, and after the chunked ones.

Wall-clock rates depend on what else the machine runs (the load average is printed with each
figure), so the database-part phase also reports CPU time per row: of the server backend
(from /proc) and of this process (validation and encoding, in a helper thread). The two run
in parallel, so on two free cores the load runs at about 1 / max(backend, Python) rows/s.

The server is a fresh LocalPostgres with default durability (fsync on), migrated with every
shipped migration (``--schema products`` applies only 0001, i.e. without the change-capture
triggers of later migrations). Run: ``.venv/bin/python bench/bench_copy_load.py``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from refarch.catalog import generate_products  # noqa: E402
from refarch.db.load import load_products  # noqa: E402
from refarch.db.migrations import available_migrations, migrate  # noqa: E402
from refarch.db.server import LocalPostgres  # noqa: E402
from refarch.domain.product import Product  # noqa: E402

CHUNK = 100_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _backend_cpu(conn: psycopg.Connection) -> float:
    """CPU seconds used so far by the server process serving ``conn``."""
    fields = Path(f"/proc/{conn.info.backend_pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load() -> str:
    return f"load average {os.getloadavg()[0]:.1f}"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _fresh_database(server: LocalPostgres, name: str, schema: str) -> str:
    _drop_database(server, name)
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server.url(name)
    if schema == "products":
        only_first = Path(tempfile.mkdtemp(prefix="refarch-bench-sql-"))
        first = available_migrations()[0]
        (only_first / first.filename).write_text(first.sql, encoding="utf-8")
        migrate(url, only_first)
        shutil.rmtree(only_first)
    else:
        migrate(url)
    return url


def _chunks(n: int) -> Iterator[list[Product]]:
    products = generate_products(n)
    while chunk := list(itertools.islice(products, CHUNK)):
        yield chunk


def bench(server: LocalPostgres, n: int, schema: str, batch_size: int) -> None:
    started = time.perf_counter()
    for _ in generate_products(n):
        pass
    generation = time.perf_counter() - started
    print(f"n={n:,}: generation alone {generation:.2f}s = {n / generation:,.0f} products/s "
          f"(baseline; {_load()})")

    url = _fresh_database(server, f"bench_stream_{n}", schema)
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        stream = load_products(conn, generate_products(n), total=n, batch_size=batch_size,
                               progress=False)
        streaming = time.perf_counter() - started
        assert stream.inserted == n, stream.summary()
        started = time.perf_counter()
        again = load_products(conn, generate_products(n), total=n, batch_size=batch_size,
                              progress=False)
        reload = time.perf_counter() - started
        assert again.unchanged == n, again.summary()
    print(f"n={n:,}: streaming generate+load {streaming:.2f}s = {n / streaming:,.0f} rows/s "
          f"end to end; identical reload {reload:.2f}s = {n / reload:,.0f} rows/s (all "
          f"unchanged; includes generation; {_load()})")
    print(f"n={n:,}: peak RSS after streaming loads: {_peak_rss_mb():,.0f} MB")

    # Each phase starts on a quiet server: without the streaming phase's database, and with
    # its dirty pages written out (else its checkpoint would run during the timed load).
    _drop_database(server, f"bench_stream_{n}")
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    url = _fresh_database(server, f"bench_db_{n}", schema)
    loading = backend = python = 0.0
    with psycopg.connect(url) as conn:
        for chunk in _chunks(n):
            started, cpu, own = time.perf_counter(), _backend_cpu(conn), time.process_time()
            result = load_products(conn, chunk, batch_size=batch_size, progress=False)
            loading += time.perf_counter() - started
            backend += _backend_cpu(conn) - cpu
            python += time.process_time() - own
            assert result.inserted == len(chunk), result.summary()
    per_row = max(backend, python) / n
    print(f"n={n:,}: COPY load, database part only {loading:.2f}s = {n / loading:,.0f} rows/s "
          f"({_load()}; products generated ahead in chunks of {CHUNK:,}; peak RSS now "
          f"{_peak_rss_mb():,.0f} MB)")
    print(f"n={n:,}: CPU per row: server backend {backend / n * 1e6:.1f} us, Python "
          f"{python / n * 1e6:.1f} us -> about {1 / per_row:,.0f} rows/s on two free cores")
    _drop_database(server, f"bench_db_{n}")


def _drop_database(server: LocalPostgres, name: str) -> None:
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000",
                        help="comma-separated product counts (default 100000,1000000)")
    parser.add_argument("--schema", choices=("full", "products"), default="full",
                        help="all migrations (default) or only 0001_products")
    parser.add_argument("--batch-size", type=int, default=50_000)
    args = parser.parse_args()
    # Under /tmp: the server user (when root) must be able to enter it.
    root = Path(tempfile.mkdtemp(prefix="refarch-bench-pg-", dir="/tmp"))
    root.chmod(0o755)
    server = LocalPostgres(root, _free_port())
    try:
        started = time.perf_counter()
        server.start()
        print(f"server: PostgreSQL {server.binaries().major}, fsync on, started (initdb included)"
              f" in {time.perf_counter() - started:.1f}s; schema={args.schema}, "
              f"batch size {args.batch_size:,}")
        for n in (int(s) for s in args.sizes.split(",")):
            bench(server, n, args.schema, args.batch_size)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(server.socket_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
