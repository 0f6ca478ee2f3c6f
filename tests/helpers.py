"""Helpers for tests: the test servers' shapes, running the CLI, comparing models readably.

Fixtures live in ``tests/fixtures/`` (pytest plugins, loaded by ``conftest.py``); model and
YAML builders in ``tests/factories.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from typer.testing import CliRunner

REPO_ROOT = Path(__file__).resolve().parent.parent
# The CLI's caches (parse answers, shadow models) for this test process: not the user's, not the checkout.
TEST_CACHE_DIR = os.path.join(tempfile.gettempdir(), f"veza-test-cache-{os.getpid()}")


SAMPLE_SCHEMA = REPO_ROOT / "tests" / "data" / "sample_schema"


@contextlib.contextmanager
def sample_with_drift(dsn: str) -> Iterator[psycopg.Connection]:
    """The sample schema built in the database at ``dsn``, with one drift: an extra column."""
    from veza_schema.sql.render import create_schema_sections, sections_to_sql
    from veza_schema.yaml.loader import load_schema

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sections_to_sql(create_schema_sections(load_schema(SAMPLE_SCHEMA))).encode())
        conn.execute("ALTER TABLE accounts ADD COLUMN nickname text")
        yield conn


@dataclass
class Server:
    admin_dsn: str
    label: str

    def dsn_for(self, dbname: str) -> str:
        parts = urlsplit(self.admin_dsn)
        return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))

    def version(self) -> int:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            row = conn.execute("SHOW server_version_num").fetchone()
            assert row is not None
            return int(row[0]) // 10000


@dataclass
class TestDatabase:
    """A fresh, empty database of its own for one test."""

    __test__ = False

    name: str
    dsn: str
    server: Server

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn, autocommit=True)

    def query(self, sql: str, params: tuple | dict | None = None) -> list[tuple]:
        with self.connect() as conn:
            cur = conn.execute(sql, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def execute(self, sql: str, params: tuple | dict | None = None) -> None:
        with self.connect() as conn:
            conn.execute(sql, params)  # type: ignore[arg-type]


def fresh_database(server: Server) -> Iterator[TestDatabase]:
    """A new empty database on ``server``, dropped afterwards (iterate it, or use it as a fixture body)."""
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield TestDatabase(name, server.dsn_for(name), server)
    finally:
        with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def cli_env() -> dict[str, str]:
    """The environment a CLI subprocess gets: no inherited database settings, plain wide output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VEZA_DATABASE_URL", "DATABASE_URL", "PG"))}
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb", "VEZA_CACHE_DIR": TEST_CACHE_DIR})
    return env


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str | None] | None = None,
            timeout: float = 300) -> CliResult:
    """Run the real ``veza-schema`` CLI in a subprocess, as a user would (``env``: None unsets)."""
    full_env = cli_env()
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    proc = subprocess.run(
        [sys.executable, "-m", "veza_schema", *args],
        cwd=cwd or REPO_ROOT, env=full_env, capture_output=True, text=True, timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


_QUIET_ENV = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb", "VEZA_CACHE_DIR": TEST_CACHE_DIR}


def invoke(*args: str, cwd: Path | None = None, env: dict[str, str | None] | None = None) -> CliResult:
    """Run the CLI in this process (``veza_schema.cli.run``): the exit code and both streams, as
    :func:`run_cli` gives them, without the cost of a new interpreter."""
    from veza_schema.cli import run

    cleared = {k: None for k in os.environ if k.startswith(("VEZA_DATABASE_URL", "DATABASE_URL", "PG"))}
    runner = CliRunner()
    with runner.isolation(env={**cleared, **_QUIET_ENV, **(env or {})}) as streams, \
            contextlib.chdir(cwd or REPO_ROOT):
        code = run(list(args))
        sys.stdout.flush()
        sys.stderr.flush()
        out, err = streams[0].getvalue(), streams[1].getvalue()
    return CliResult(code, out.decode("utf-8", errors="replace"), err.decode("utf-8", errors="replace"))


def mismatches(expected: Any, actual: Any, path: str = "schema") -> list[str]:
    """Every compared field that differs, as ``path: expected != actual`` (readable failures)."""
    if expected == actual:
        return []
    if dataclasses.is_dataclass(expected) and type(expected) is type(actual):
        found: list[str] = []
        for field in dataclasses.fields(expected):
            if field.compare:
                found += mismatches(getattr(expected, field.name), getattr(actual, field.name),
                                    f"{path}.{field.name}")
        return found
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        found = []
        for key in sorted(set(expected) | set(actual)):
            if key not in actual:
                found.append(f"{path}.{key}: missing from the database")
            elif key not in expected:
                found.append(f"{path}.{key}: only in the database")
            else:
                found += mismatches(expected[key], actual[key], f"{path}.{key}")
        return found
    if isinstance(expected, tuple) and isinstance(actual, tuple) and len(expected) == len(actual):
        return [m for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                for m in mismatches(e, a, f"{path}[{i}]")]
    return [f"{path}: {expected!r} != {actual!r}"]


HAND_WRITTEN = "-- veza: hand-written\n"


def hand_written(sql: str) -> str:
    """A test's own SQL as a hand-written migration: ``apply`` runs it as written (after ``-- no-transaction``,
    which SQLx wants on the first line)."""
    if sql.startswith("-- no-transaction\n"):
        return "-- no-transaction\n" + HAND_WRITTEN + sql.removeprefix("-- no-transaction\n")
    return HAND_WRITTEN + sql


def write_migrations(directory: Path, files: dict[str, str]) -> Path:
    """A migrations directory holding ``files`` (name -> SQL) as hand-written migrations, hashed as `hash` does."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(hand_written(text))
    result = run_cli("hash", "--migrations-dir", str(directory))
    assert result.exit_code == 0, result.output
    return directory


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``seconds`` (a safety net, not a timing)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)
