"""The round-trip corpus: database pairs ``tests/corpus/<case>/{a,b}.sql`` judged by ``pg_dump -s``.

For each case, on one server: load ``a.sql`` into database A and ``b.sql`` into B; ``inspect``
B; ``diff --dsn A --format sql`` against that YAML and run the SQL on A; then compare A and B
with ``pg_dump -s`` (a judge that is not our own introspector). ``expect.yaml`` in a case
says what must happen when the case is not exact (``unmodeled``: kinds ``inspect`` must name;
``not_reconciled``: words a ``-- not reconciled`` line of the SQL must hold).

A ``-- corpus: veza`` first line in a SQL file means: apply the shipped migrations first
(the Veza schema), then the rest of the file. Roles are cluster-wide: case files create theirs
with ``DO ... EXCEPTION WHEN duplicate_object``, named after the case.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import yaml

from tests.helpers import REPO_ROOT, CliResult, Server, TestDatabase, invoke
from veza_schema.db.servers import debian_bindir, embedded_bindir

CORPUS = REPO_ROOT / "tests" / "corpus"
VEZA_MARK = "-- corpus: veza"
# What our own tool puts in a database besides the schema: left out of the pg_dump comparison.
MANAGED_OBJECTS = ("DROP TABLE IF EXISTS public._sqlx_migrations;\n"
                   "DROP FUNCTION IF EXISTS public.veza_ensure_partitions(text, text, integer);\n")


@dataclass(frozen=True)
class Expectation:
    unmodeled: tuple[str, ...] = ()
    not_reconciled: tuple[str, ...] = ()

    @property
    def exact(self) -> bool:
        return not self.unmodeled and not self.not_reconciled


def cases() -> list[str]:
    return sorted(path.name for path in CORPUS.iterdir() if (path / "b.sql").exists())


def expectation(case: str) -> Expectation:
    path = CORPUS / case / "expect.yaml"
    if not path.exists():
        return Expectation()
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return Expectation(tuple(data.get("unmodeled", ())), tuple(data.get("not_reconciled", ())))


def bindir(server: Server) -> Path:
    """The client programs matching the server: Debian's for 15, the embedded wheel's for 18."""
    version = server.version()
    found = debian_bindir() if version < 18 else embedded_bindir()
    found = found or embedded_bindir()
    assert found is not None and (found / "pg_dump").exists(), "no pg_dump on this machine"
    return found


def psql(server: Server, dsn: str, sql: str) -> None:
    """Run a script as psql does (statement by statement, stopping at the first error)."""
    done = subprocess.run([str(bindir(server) / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn],
                          input=sql, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"psql failed:\n{done.stderr}\n--- script ---\n{sql}"


def starts_from_veza(case: str, side: str) -> bool:
    path = CORPUS / case / f"{side}.sql"
    return path.exists() and path.read_text(encoding="utf-8").startswith(VEZA_MARK)


def build_veza_template(server: Server, name: str) -> None:
    """A database holding the shipped migrations applied, for cases that start from the Veza schema."""
    with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    result = invoke("apply", "--dsn", server.dsn_for(name), "--migrations-dir", str(REPO_ROOT / "migrations"))
    assert result.exit_code == 0, result.output


@contextmanager
def case_database(server: Server, template: str = "template0") -> Iterator[TestDatabase]:
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield TestDatabase(name, server.dsn_for(name), server)
    finally:
        with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def load(database: TestDatabase, sql_file: Path) -> None:
    """Run a case file (its Veza mark, if any, is satisfied by the database's template)."""
    psql(database.server, database.dsn, sql_file.read_text(encoding="utf-8"))


_NOISE = re.compile(r"^(--.*|\\(un)?restrict .*|SET .*|SELECT pg_catalog\.set_config.*)$")


def dump(database: TestDatabase) -> str:
    """``pg_dump -s`` without comments, session settings, blank lines and our own managed objects."""
    psql(database.server, database.dsn, MANAGED_OBJECTS)
    done = subprocess.run([str(bindir(database.server) / "pg_dump"), "-s", "--no-owner", "-d", database.dsn],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.strip() and not _NOISE.match(line)]
    return "\n".join(lines) + "\n"


@dataclass
class RoundTrip:
    """Everything one case run produced, for the assertions and for readable failures."""

    inspect: CliResult
    sql: CliResult
    dump_a: str = ""
    dump_b: str = ""
    back: CliResult | None = None  # diff --dsn B against inspect(A) after the reconciliation
    notes: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return self.dump_a == self.dump_b


def round_trip(case: str, a: TestDatabase, b: TestDatabase, tmp_path: Path) -> RoundTrip:
    """A and B are created by the caller (from the Veza template when the case file says so)."""
    if (CORPUS / case / "a.sql").exists():
        load(a, CORPUS / case / "a.sql")
    load(b, CORPUS / case / "b.sql")
    shadow = ("--shadow-dsn", b.server.admin_dsn)
    out_b = tmp_path / "b_yaml"
    inspected = invoke("inspect", "--dsn", b.dsn, "--out", str(out_b))
    assert inspected.exit_code in (0, 1), inspected.output
    sql = invoke("diff", "--dsn", a.dsn, "--schema-dir", str(out_b), "--format", "sql", *shadow)
    assert sql.exit_code in (0, 1), sql.output
    result = RoundTrip(inspected, sql)
    psql(a.server, a.dsn, sql.stdout)
    result.dump_a, result.dump_b = dump(a), dump(b)
    out_a = tmp_path / "a_yaml"
    inspected_a = invoke("inspect", "--dsn", a.dsn, "--out", str(out_a))
    assert inspected_a.exit_code in (0, 1), inspected_a.output
    result.back = invoke("diff", "--dsn", b.dsn, "--schema-dir", str(out_a), *shadow)
    return result


def dump_difference(result: RoundTrip) -> str:
    import difflib

    return "".join(difflib.unified_diff(result.dump_b.splitlines(True), result.dump_a.splitlines(True),
                                        "pg_dump -s B", "pg_dump -s A after the reconciling SQL", n=2))
