"""Write-stall benchmark: how long a live writer waits while a migration runs, for every change the
planner makes online-safe, each against the DDL a naive generator writes.

Method (``../shared/notes/postgres-locks.md``): a throwaway PostgreSQL server, a table ``events``
of 1,000,000 rows, a writer thread inserting into it about once per millisecond on its own
autocommit connection and recording every latency, a sampler thread reading
``pg_blocking_pids(writer)`` every 5 ms, and the migration run from another process. Each
change is applied twice, to two clones of the same populated database:

- ``veza``: the files ``veza-schema generate`` writes for it, run by ``veza-schema apply``;
- ``naive``: the DDL a generator without online-safe recipes writes, in one transaction (the
  positive control: where PostgreSQL must scan or rewrite under lock, it must show a stall,
  proving the harness can see one).

Changes: index, UNIQUE, CHECK, SET NOT NULL, varchar widening, foreign key, enum value, a NOT
NULL column with a constant default; and on a partitioned table (``veza-schema partitions``, the
maintenance job): creating the partition for rows waiting in the default partition (also with
another table referencing them by a foreign key: PostgreSQL refuses to TRUNCATE a referenced
table, so the job's last step drops that foreign key around the TRUNCATE and re-adds it NOT
VALID, validating it after the commit while writers go on), and
retention dropping expired months while the default partition holds rows (a catalog operation
in both forms: removing a partition only widens the default partition's constraint, so
PostgreSQL does not scan it). Three of them cannot
stall in either form (PostgreSQL widens a varchar, adds a column with a constant default and
drops a partition in its catalog only), so they have no positive control; the enum's naive form
is the type rebuild tools without ``ADD VALUE`` use. For partition creation the writer inserts
late rows of the month being created (they land in the default partition until it exists): those
are the writes a careless move would stall.

A first run with no migration at all measures the machine's own noise floor (a writer thread
can be descheduled on a busy machine); the column ``blocked`` (the writer waiting on a lock,
sampled every 5 ms) separates lock stalls from that noise. Printed per change: the worst write
gap (the longest time between two completed writes, or a write's own latency, whichever is
longer) for each plan, the time the writer spent blocked on a lock, and the ratio. Target:
worst gap < 50 ms for every veza plan; exit 1 when a target or a positive control fails.
Under each change, the worst gap is explained by what the writer's backend was sampled doing
meanwhile (``Lock:relation``: waiting for the migration; ``Client:ClientRead`` or no sample: the
gap was on the client side, the machine's noise); ``--server-log`` logs every statement on the
bench server and prints, for the three worst gaps, what ran during each.

Run: ``python bench/bench_write_stall.py [--rows 1000000] [--only index,check] [--server-log]``
(``make bench`` runs it through ``bench_peers.py``); a few minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import multiprocessing.queues
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from veza_schema.db.dsn import Target  # noqa: E402
from veza_schema.db.servers import ThrowawayServer, debian_bindir, embedded_bindir  # noqa: E402
from veza_schema.migrations import runner  # noqa: E402
from veza_schema.migrations.files import read_migrations  # noqa: E402
from veza_schema.migrations.generate import FileSettings, generate_initial  # noqa: E402
from veza_schema.migrations.incremental import generate_incremental  # noqa: E402
from veza_schema.migrations.sumfile import write_sum  # noqa: E402
from veza_schema.yaml.loader import load_schema  # noqa: E402

TARGET_MS = 50.0
WRITER_NICE = -10
CONTROL_MS = 200.0  # a naive plan that must stall has to stall at least this long

BASE_YAML = """\
module: bench
enums:
  event_kind: [click, view]
tables:
  accounts:
    columns:
      id:   {type: uuid, primary_key: true, default: gen_random_uuid()}
      name: {type: text}
  events:
    columns:
      id:         {type: uuid, primary_key: true, default: gen_random_uuid()}
      account_id: {type: uuid}
      seq:        {type: bigint}
      amount:     {type: integer}
      note:       {type: varchar(200), nullable: true}
      kind:       {type: event_kind, default: "'click'"}
      payload:    {type: text}
      created_at: {type: timestamptz, default: now()}
"""


def _replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert text.count(old) == 1, old
        return text.replace(old, new)
    return edit


def _append(section: str) -> Callable[[str], str]:
    return lambda text: text + section  # ``events`` is the last table: its sections go at the end


@dataclass(frozen=True)
class Change:
    name: str
    edit: Callable[[str], str]
    naive: tuple[str, ...]
    naive_stalls: bool = True  # False: PostgreSQL changes only its catalog, both forms are instant


CHANGES = (
    Change("index", _append("    indexes:\n      idx_events_created_at: {columns: [created_at]}\n"),
           ("CREATE INDEX idx_events_created_at ON events (created_at)",)),
    Change("unique", _append("    unique:\n      uq_events_seq: [seq]\n"),
           ("ALTER TABLE events ADD CONSTRAINT uq_events_seq UNIQUE (seq)",)),
    Change("check", _append("    checks:\n      chk_events_amount_positive: amount >= 0\n"),
           ("ALTER TABLE events ADD CONSTRAINT chk_events_amount_positive CHECK (amount >= 0)",)),
    Change("set not null", _replace("note:       {type: varchar(200), nullable: true}",
                                    "note:       {type: varchar(200)}"),
           ("ALTER TABLE events ALTER COLUMN note SET NOT NULL",)),
    Change("varchar widening", _replace("note:       {type: varchar(200), nullable: true}",
                                        "note:       {type: varchar(500), nullable: true}"),
           ("ALTER TABLE events ALTER COLUMN note TYPE varchar(500)",), naive_stalls=False),
    Change("foreign key", _append("    foreign_keys:\n      fk_events_accounts: {columns: [account_id], "
                                  "references: accounts(id), on_delete: cascade}\n"),
           ("ALTER TABLE events ADD CONSTRAINT fk_events_accounts FOREIGN KEY (account_id) REFERENCES accounts (id) "
            "ON DELETE CASCADE",)),
    Change("enum value", _replace("event_kind: [click, view]", "event_kind: [click, view, purchase]"),
           ("ALTER TYPE event_kind RENAME TO event_kind_old",
            "CREATE TYPE event_kind AS ENUM ('click', 'view', 'purchase')",
            "ALTER TABLE events ALTER COLUMN kind DROP DEFAULT",
            "ALTER TABLE events ALTER COLUMN kind TYPE event_kind USING kind::text::event_kind",
            "ALTER TABLE events ALTER COLUMN kind SET DEFAULT 'click'",
            "DROP TYPE event_kind_old")),
    Change("column NOT NULL DEFAULT constant",
           _replace("      created_at: {type: timestamptz, default: now()}\n",
                    "      created_at: {type: timestamptz, default: now()}\n"
                    "      source:     {type: text, default: \"'web'\"}\n"),
           ("ALTER TABLE events ADD COLUMN source text NOT NULL DEFAULT 'web'",), naive_stalls=False),
)

POPULATE = (
    "INSERT INTO accounts (name) SELECT 'account ' || i FROM generate_series(1, 1000) AS i",
    "INSERT INTO events (account_id, seq, amount, note, kind, payload, created_at) "
    "SELECT a.ids[1 + mod(i, 1000)], i, mod(i, 1000), 'note ' || i, "
    "(ARRAY['click', 'view'])[1 + mod(i, 2)]::event_kind, 'payload ' || i, now() - i * interval '1 second' "
    "FROM generate_series(1, %(rows)s) AS i, (SELECT array_agg(id) AS ids FROM accounts) AS a",
    "VACUUM ANALYZE",
)
INSERT = "INSERT INTO events (account_id, seq, amount, note, payload) VALUES (%s, %s, 1, 'live', 'live write')"


@dataclass
class Recording:
    """What the writer and the sampler saw."""

    writes: list[tuple[float, float]] = field(default_factory=list)  # (start, end), perf_counter
    blocked: list[float] = field(default_factory=list)  # sample times when the writer was blocked
    waits: list[tuple[float, str]] = field(default_factory=list)  # (sample time, what the writer's backend did)
    errors: list[str] = field(default_factory=list)


Insert = Callable[[int], tuple[str, tuple[object, ...]]]


def writer(dsn: str, insert: Insert, stop: EventLike, out: multiprocessing.queues.Queue) -> None:
    """Insert about once per millisecond, recording each write's start and end; in a process of its
    own (no interpreter lock shared with the sampler or the bench), sending back its backend's pid,
    then what it recorded. It plays the application, which in production runs on another host: it
    asks for a raised CPU priority (:data:`WRITER_NICE`, granted to root) so that the load of this
    shared machine shows less as gaps of its own; its database backend keeps the normal priority."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, WRITER_NICE)
    rec = Recording()
    with psycopg.connect(dsn, autocommit=True, application_name="bench writer") as conn:
        out.put(conn.info.backend_pid)
        i = 0
        while not stop.is_set():
            start = time.perf_counter()
            try:
                conn.execute(*insert(i))
            except psycopg.Error as exc:  # recorded, not fatal: the bench reports it
                rec.errors.append(str(exc).splitlines()[0])
            end = time.perf_counter()
            rec.writes.append((start, end))
            i += 1
            pause = 0.001 - (end - start)
            if pause > 0:
                time.sleep(pause)
    out.put((rec.writes, rec.errors))


class EventLike(Protocol):
    def is_set(self) -> bool: ...


def sampler(dsn: str, writer_pid: int, stop: EventLike, rec: Recording) -> None:
    """Every 5 ms: is the writer waiting on a lock someone else holds, and what is its backend doing
    (a wait event such as ``Lock:relation`` or ``LWLock:...``, ``running`` on a CPU, or ``idle``: the
    write is done and the gap, if any, is the writer's own process)?"""
    with psycopg.connect(dsn, autocommit=True, application_name="bench sampler") as conn:
        while not stop.is_set():
            row = conn.execute("SELECT cardinality(pg_blocking_pids(pid)), state, wait_event_type, wait_event "
                               "FROM pg_stat_activity WHERE pid = %s", (writer_pid,)).fetchone()
            now = time.perf_counter()
            if row:
                if row[0]:
                    rec.blocked.append(now)
                what = f"{row[2]}:{row[3]}" if row[2] else ("running" if row[1] == "active" else str(row[1]))
                rec.waits.append((now, what))
            time.sleep(0.005)


@dataclass
class Result:
    plan: str
    seconds: float
    writes: int
    worst_ms: float  # the longer of the worst write latency and the longest gap between completed writes
    blocked_ms: float
    median_ms: float
    errors: list[str]
    # The three worst gaps: (start, end) in seconds since the epoch, and what the writer's backend
    # was sampled doing during each.
    worst_gaps: list[tuple[float, float, str]] = field(default_factory=list)


def events_writer(dsn: str) -> Insert:
    with psycopg.connect(dsn, autocommit=True) as conn:
        accounts = [row[0] for row in conn.execute("SELECT id FROM accounts ORDER BY id")]
    return lambda i: (INSERT, (accounts[i % len(accounts)], 10**12 + i))


def measure(plan: str, dsn: str, migrate: Callable[[], None], insert: Insert | None = None) -> Result:
    """Run ``migrate()`` under a live writer; stats over the writes overlapping the migration."""
    insert = insert or events_writer(dsn)
    epoch = time.time() - time.perf_counter()  # perf_counter -> seconds since the epoch (the server log's %n)
    rec = Recording()
    processes = multiprocessing.get_context("fork")  # the insert may be a closure
    stop, out = processes.Event(), processes.Queue()
    write_process = processes.Process(target=writer, args=(dsn, insert, stop, out), daemon=True)
    write_process.start()
    writer_pid = out.get(timeout=60)
    sample_stop = threading.Event()
    sample_thread = threading.Thread(target=sampler, args=(dsn, writer_pid, sample_stop, rec), daemon=True)
    sample_thread.start()
    time.sleep(0.5)  # warm up: prepared statement, steady rate
    began = time.perf_counter()
    migrate()
    ended = time.perf_counter()
    time.sleep(0.5)  # let blocked writes finish
    stop.set()
    sample_stop.set()
    rec.writes, rec.errors = out.get(timeout=60)
    write_process.join(timeout=60)
    sample_thread.join()
    during = [(s, e) for s, e in rec.writes if s <= ended and e >= began]
    ends = sorted(e for _, e in rec.writes if began - 0.05 <= e <= ended + 0.5)
    latencies = [e - s for s, e in during]
    blocked = [t for t in rec.blocked if began <= t <= ended + 0.5]
    windows = sorted([*during, *zip(ends, ends[1:], strict=False)], key=lambda w: w[0] - w[1])
    worst = windows[0][1] - windows[0][0] if windows else 0.0
    worst_gaps = []
    for lo, hi in windows[:3]:
        seen = [what for t, what in rec.waits if lo <= t <= hi]
        waits = ", ".join(f"{what} x{seen.count(what)}" for what in sorted(set(seen), key=seen.index))
        worst_gaps.append((lo + epoch, hi + epoch, waits or "no sample (the sampler was not scheduled either)"))
    return Result(plan, ended - began, len(during), 1000 * worst, 5.0 * len(blocked),
                  1000 * statistics.median(latencies) if latencies else 0.0, rec.errors, worst_gaps)


def clone(admin_dsn: str, template: str, name: str) -> str:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
    return psycopg.conninfo.make_conninfo(admin_dsn, dbname=name)


def drop(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@dataclass
class ChangeResult:
    change: Change
    files: list[str]
    veza: Result
    naive: Result

    @property
    def met(self) -> bool:
        return self.veza.worst_ms < TARGET_MS and not self.veza.errors

    @property
    def control_seen(self) -> bool | None:
        return self.naive.worst_ms >= CONTROL_MS if self.change.naive_stalls else None


def run_change(admin: str, work: Path, base_dir: Path, change: Change) -> ChangeResult:
    """Generate the veza plan for ``change`` and measure it and its naive DDL on clones of the template."""
    slug = change.name.lower().replace(" ", "_")
    migrations = work / f"migrations_{slug}"
    shutil.copytree(base_dir / "migrations", migrations)
    (work / slug).mkdir()
    (work / slug / "bench.yaml").write_text(change.edit(BASE_YAML))
    written = generate_incremental(load_schema(base_dir / "schema"), load_schema(work / slug), migrations,
                                   slug, FileSettings())
    write_sum(migrations)
    veza_dsn = clone(admin, "stall_template", "stall_veza")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "VEZA_DATABASE_URL", "DATABASE_URL"))}

    def run_veza() -> None:  # the CLI in its own process, as a DBA runs it
        proc = subprocess.run([sys.executable, "-m", "veza_schema", "apply", "--dsn", veza_dsn,
                               "--migrations-dir", str(migrations)], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"veza-schema apply failed for {change.name}:\n{proc.stdout}{proc.stderr}")

    veza = measure("veza", veza_dsn, run_veza)
    drop(admin, "stall_veza")
    naive_dsn = clone(admin, "stall_template", "stall_naive")

    def run_naive() -> None:
        with psycopg.connect(naive_dsn) as conn:  # one transaction, as a naive tool runs it
            for statement in change.naive:
                conn.execute(statement.encode())

    naive = measure("naive", naive_dsn, run_naive)
    drop(admin, "stall_naive")
    return ChangeResult(change, [w.up_path.name for w in written], veza, naive)


def prepare(admin: str, work: Path, rows: int) -> Path:
    """The base schema's initial migration, applied and populated in ``stall_template``."""
    base = work / "base"
    (base / "schema").mkdir(parents=True)
    (base / "schema" / "bench.yaml").write_text(BASE_YAML)
    initial = generate_initial(load_schema(base / "schema"), base / "migrations", "initial", FileSettings())
    template = clone(admin, "template0", "stall_template")
    runner.apply(Target(template, "bench"), read_migrations(base / "migrations"), to=initial[-1].version)
    with psycopg.connect(template, autocommit=True) as conn:
        for statement in POPULATE:
            conn.execute(statement, {"rows": rows} if "%(rows)s" in statement else None)
    return base


def noise_floor(admin: str, template: str) -> Result:
    """The writer alone for two seconds: the gaps this machine makes without any migration."""
    dsn = clone(admin, template, "stall_idle")
    insert = None if template == "stall_template" else (lambda i: (LOGS_INSERT, ()))
    result = measure("idle", dsn, lambda: time.sleep(2.0), insert)
    drop(admin, "stall_idle")
    return result


# -- partition maintenance on a partitioned table (veza-schema partitions) ------------------------
PARTS_YAML = """\
module: parts
tables:
  logs:
    columns:
      id:         {type: uuid, default: gen_random_uuid()}
      created_at: {type: timestamptz, default: now()}
      payload:    {type: text}
    primary_key: [id, created_at]
    partition_by: {range: [created_at], interval: month, premake: 1, default_partition: true,
                   retention: 3 months, retention_keep_table: false}
"""
# The same table referenced by another (the shipped messages/message_reactions shape): the default
# partition's rows can be TRUNCATEd only with the foreign key dropped (and re-added NOT VALID) around it.
MARKS_YAML = """\
  log_marks:
    columns:
      id:             {type: bigint, identity: always, primary_key: true}
      log_id:         {type: uuid}
      log_created_at: {type: timestamptz}
    foreign_keys:
      fk_log_marks_logs:
        columns: [log_id, log_created_at]
        references: logs(id, created_at)
        on_delete: cascade
    indexes:
      idx_log_marks_log: {columns: [log_created_at, log_id]}
"""
LOGS_INSERT = "INSERT INTO logs (payload) VALUES ('live write')"
LOGS_LATE_INSERT = "INSERT INTO logs (created_at, payload) VALUES (%s, 'late write')"


def _month(offset: int) -> datetime:
    """The first day of the month ``offset`` months from now (UTC)."""
    today = datetime.now(UTC)
    index = today.year * 12 + today.month - 1 + offset
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def prepare_partitions(admin: str, work: Path, rows: int, *, referenced: bool = False) -> Path:
    """``stall_parts``: half the rows in two expired months (their own partitions), half in a month
    three ahead that has no partition yet (so they sit in the default partition). ``referenced``:
    ``stall_parts_fk``, the same with ``log_marks`` referencing one in ten of the rows ahead."""
    name = "stall_parts_fk" if referenced else "stall_parts"
    base = work / name
    (base / "schema").mkdir(parents=True)
    (base / "schema" / "parts.yaml").write_text(PARTS_YAML + (MARKS_YAML if referenced else ""))
    generate_initial(load_schema(base / "schema"), base / "migrations", "initial", FileSettings())
    template = clone(admin, "template0", name)
    runner.apply(Target(template, "bench"), read_migrations(base / "migrations"))
    with psycopg.connect(template, autocommit=True) as conn:
        for offset in (-6, -5):
            start, end = _month(offset), _month(offset + 1)
            conn.execute(sql.SQL("CREATE TABLE {} PARTITION OF logs FOR VALUES FROM ({}) TO ({})").format(
                sql.Identifier(f"logs_p{start:%Y%m}"), sql.Literal(start), sql.Literal(end)))
        for offset, count in ((-6, rows // 4), (-5, rows // 4), (3, rows // 2)):
            conn.execute("INSERT INTO logs (created_at, payload) SELECT %s + (i %% 2000000) * interval '1 second', "
                         "'payload ' || i FROM generate_series(1, %s) AS i", (_month(offset), count))
        if referenced:
            conn.execute("INSERT INTO log_marks (log_id, log_created_at) SELECT id, created_at FROM ONLY logs_default "
                         "TABLESAMPLE SYSTEM (10)")
        conn.execute("VACUUM ANALYZE")
    return base


def _naive_creation() -> tuple[str, ...]:
    """What a hand-written job does: move the month's rows out of the default and attach, in one transaction."""
    start, end = _month(3), _month(4)
    name, bounds = f"logs_p{start:%Y%m}", (f"'{start:%Y-%m-%d} 00:00:00+00'", f"'{end:%Y-%m-%d} 00:00:00+00'")
    where = f"created_at >= {bounds[0]} AND created_at < {bounds[1]}"
    statements = [f"CREATE TABLE {name} (LIKE logs INCLUDING ALL)",
                  "LOCK TABLE logs IN ACCESS EXCLUSIVE MODE",  # else late rows fail the attach, or deadlock
                  f"INSERT INTO {name} SELECT * FROM logs_default WHERE {where}",
                  f"DELETE FROM logs_default WHERE {where}",
                  f"ALTER TABLE logs ATTACH PARTITION {name} FOR VALUES FROM ({bounds[0]}) TO ({bounds[1]})"]
    for offset in (1, 2):  # the empty months in between: each scans the default partition
        first, after = _month(offset), _month(offset + 1)
        statements.append(f"CREATE TABLE IF NOT EXISTS logs_p{first:%Y%m} PARTITION OF logs FOR VALUES FROM "
                          f"('{first:%Y-%m-%d} 00:00:00+00') TO ('{after:%Y-%m-%d} 00:00:00+00')")
    return tuple(statements)


def _naive_retention() -> tuple[str, ...]:
    return tuple(f"DROP TABLE logs_p{_month(offset):%Y%m}" for offset in (-6, -5))


PARTITION_CHANGES = (
    Change("partition creation, rows in the default partition", lambda text: text, _naive_creation()),
    # The naive form is the same move in one transaction (as written it also cascades the deletion to
    # log_marks; the job moves the rows without firing ON DELETE actions): the control of the stall.
    Change("partition creation, rows in the default partition, referenced by a foreign key", lambda text: text,
           _naive_creation()),
    Change("partition retention, rows in the default partition", lambda text: text, _naive_retention(),
           naive_stalls=False),
)


def run_partition_change(admin: str, base: Path, change: Change) -> ChangeResult:
    """``veza-schema partitions`` (premake 3: the month holding default rows) against the naive DDL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "VEZA_DATABASE_URL", "DATABASE_URL"))}
    creation = change.name.startswith("partition creation")
    template = "stall_parts_fk" if "foreign key" in change.name else "stall_parts"
    premake = "3" if creation else "1"
    late = _month(3) + timedelta(days=1)

    def insert(i: int) -> tuple[str, tuple[object, ...]]:
        return (LOGS_LATE_INSERT, (late,)) if creation else (LOGS_INSERT, ())

    veza_dsn = clone(admin, template, "stall_veza")

    def run_veza() -> None:
        proc = subprocess.run([sys.executable, "-m", "veza_schema", "partitions", "--dsn", veza_dsn, "--schema-dir",
                               str(base / "schema"), "--premake", premake], capture_output=True, text=True, env=env)
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"veza-schema partitions failed for {change.name}:\n{proc.stdout}{proc.stderr}")

    veza = measure("veza", veza_dsn, run_veza, insert)
    drop(admin, "stall_veza")
    naive_dsn = clone(admin, template, "stall_naive")

    def run_naive() -> None:
        with psycopg.connect(naive_dsn) as conn:
            for statement in change.naive:
                conn.execute(statement.encode())

    naive = measure("naive", naive_dsn, run_naive, insert)
    drop(admin, "stall_naive")
    return ChangeResult(change, [f"veza-schema partitions --premake {premake}"], veza, naive)


def print_results(results: list[ChangeResult], rows: int, idle: Result | None = None) -> None:
    print(f"write stall on {rows:,} rows (worst gap between a writer's completed inserts while the migration runs)")
    raised = os.getuid() == 0
    print(f"the writer process at nice {WRITER_NICE if raised else 0}"
          f"{'' if raised else ' (not root: its priority could not be raised)'}, {os.cpu_count()} CPU(s), "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    if idle is not None:
        print(f"noise floor: the writer alone, no migration, {idle.worst_ms:.1f} ms worst gap "
              f"({idle.blocked_ms:.0f} ms blocked on locks): gaps near it are the machine, not a lock")
    print()
    print("| change | veza-schema worst gap | blocked | naive DDL worst gap | blocked | naive / veza | "
          f"target < {TARGET_MS:.0f} ms |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        control = {True: "", False: f" (control NOT SEEN: < {CONTROL_MS:.0f} ms)",
                   None: " (catalog only: no stall possible)"}[r.control_seen]
        print(f"| {r.change.name} | {r.veza.worst_ms:.1f} ms | {r.veza.blocked_ms:.0f} ms | "
              f"{r.naive.worst_ms:.1f} ms{control} | {r.naive.blocked_ms:.0f} ms | "
              f"{r.naive.worst_ms / max(r.veza.worst_ms, 0.001):.1f}x | {'met' if r.met else 'MISSED'} |")
    for r in results:
        if r.veza.errors:
            print(f"  {r.change.name}: the writer saw {len(r.veza.errors)} error(s) under veza's plan: "
                  f"{r.veza.errors[0]}")


def report(result: ChangeResult, server_log: Path | None = None) -> None:
    print(f"  {result.change.name}: veza {result.veza.worst_ms:.1f} ms ({', '.join(result.files)}), "
          f"naive {result.naive.worst_ms:.1f} ms", flush=True)
    for lo, hi, waits in result.veza.worst_gaps[:3 if server_log else 1]:  # the worst, or three to explain
        print(f"    veza gap of {1000 * (hi - lo):.1f} ms: the writer's backend was sampled {waits}", flush=True)
        if server_log is not None:
            for line in logged_during(server_log, (lo, hi)):
                print(f"      {line}", flush=True)


# With --server-log: every statement with its duration, lock waits over 10 ms, checkpoints and
# autovacuum, each line stamped with the epoch (%n) to line it up with the writer's worst gap.
DIAGNOSTIC_SETTINGS = {"log_min_duration_statement": "0", "log_lock_waits": "on", "deadlock_timeout": "10ms",
                       "log_checkpoints": "on", "log_autovacuum_min_duration": "0",
                       "log_line_prefix": "'%n [%p] %a: '"}
_LOGGED = re.compile(r"^(?P<at>\d+\.\d+) \[(?P<pid>\d+)\] (?P<app>[^:]*): (?P<text>.*)$")
_DURATION = re.compile(r"duration: (?P<ms>[\d.]+) ms")


def logged_during(server_log: Path, window: tuple[float, float]) -> list[str]:
    """The server's log lines for what ran during ``window`` (a statement overlapping it, by its end
    time and duration; anything else logged in it), but the writer's and the sampler's fast statements."""
    lo, hi = window
    lines = []
    for line in server_log.read_text(errors="replace").splitlines():
        match = _LOGGED.match(line)
        if match is None:
            continue
        at, text = float(match["at"]), match["text"]
        took = _DURATION.search(text)
        seconds = float(took["ms"]) / 1000 if took else 0.0
        if at < lo - 0.002 or at - seconds > hi + 0.002:
            continue
        if match["app"].startswith("bench ") and seconds < 0.005:
            continue
        lines.append(f"{at - lo:+.3f}s {match['app'] or '-'}: {text[:220]}")
    return lines


def run(rows: int, only: list[str] | None = None, server_log: bool = False) -> bool:
    """Measure every change (or ``only`` these); print the table; True when every target and control holds."""
    bindir = debian_bindir() or embedded_bindir()
    if bindir is None:
        print("write stall: no PostgreSQL binaries (apt-get install postgresql, or the embedded extra)")
        return False
    server = ThrowawayServer(bindir, settings=DIAGNOSTIC_SETTINGS if server_log else None)
    log = server.base_dir / "log" if server_log else None
    work = Path(tempfile.mkdtemp(prefix="veza-bench-stall-"))
    results: list[ChangeResult] = []
    idle: Result | None = None
    try:
        started = time.perf_counter()
        admin = server.start()
        changes = [c for c in CHANGES if not only or c.name in only]
        names = {c.name for c in PARTITION_CHANGES}  # an entry naming one exactly is not a prefix of another
        wanted = [c for c in PARTITION_CHANGES if not only or c.name in only
                  or any(c.name.startswith(o) for o in only if o not in names)]
        if changes:
            base = prepare(admin, work, rows)
            print(f"write stall: {rows:,} rows in events, setup {time.perf_counter() - started:.0f}s", flush=True)
            idle = noise_floor(admin, "stall_template")
            for change in changes:
                results.append(run_change(admin, work, base, change))
                report(results[-1], log)
            drop(admin, "stall_template")
        if wanted:
            parts = prepare_partitions(admin, work, rows)
            if any("foreign key" in change.name for change in wanted):
                parts_fk = prepare_partitions(admin, work, rows, referenced=True)
            print(f"write stall: {rows:,} rows in logs, setup {time.perf_counter() - started:.0f}s", flush=True)
            if idle is None:
                idle = noise_floor(admin, "stall_parts")
            for change in wanted:
                results.append(run_partition_change(admin, parts_fk if "foreign key" in change.name else parts,
                                                    change))
                report(results[-1], log)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print()
    print_results(results, rows, idle)
    return all(r.met and r.control_seen is not False for r in results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--only", help="comma-separated change names, e.g. 'index,check'")
    parser.add_argument("--server-log", action="store_true",
                        help="log every statement on the bench server and print what ran during each worst gap "
                             "(diagnosis: the logging itself slows the server)")
    args = parser.parse_args()
    names = [c.name for c in (*CHANGES, *PARTITION_CHANGES)]
    # A change's whole name (some hold commas) or comma-separated names (a partition change by its prefix).
    only = [args.only] if args.only in names else [name.strip() for name in args.only.split(",")] \
        if args.only else None
    return 0 if run(args.rows, only, args.server_log) else 1


if __name__ == "__main__":
    sys.exit(main())
