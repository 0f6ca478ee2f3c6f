"""The test side of the crash harness: servers a test may power-cut, and the CLI run up to a boundary.

The process side is ``tests/crash_driver.py`` (it stops the real CLI dead before its N-th SQL
statement). Used by ``tests/test_crash_*.py``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers import REPO_ROOT, Server, cli_env, invoke
from veza_schema.db.servers import ThrowawayServer, debian_bindir, embedded_bindir


class OwnServer:
    """A throwaway cluster a test module may stop and restart: an immediate stop must not hit other tests."""

    def __init__(self, bindir: Path, label: str) -> None:
        self.handle = ThrowawayServer(bindir)
        self.label = label

    def start(self) -> None:
        self.handle.start()

    @property
    def server(self) -> Server:
        return Server(self.handle.dsn, self.label)

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run([str(self.handle.bindir / "pg_ctl"), "-D", str(self.handle.data_dir), *args], check=True,
                       capture_output=True, user=self.handle.user, timeout=120)

    def crash_and_restart(self) -> None:
        """A power cut: no checkpoint, no clean shutdown of sessions; then crash recovery on start."""
        self._pg_ctl("-w", "-m", "immediate", "stop")
        self._pg_ctl("-w", "-l", str(self.handle.base_dir / "log"), "-o",
                     f"-p {self.handle.port} -h 127.0.0.1 -k {self.handle.base_dir} -c fsync=off "
                     "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200", "start")

    def stop(self) -> None:
        self.handle.stop()


def own_server_fixture() -> Any:
    """A module-scoped fixture: an own server of each version (embedded PostgreSQL 18, Debian's 15)."""

    @pytest.fixture(scope="module", params=["embedded", "pg15"])
    def own_server(request: pytest.FixtureRequest) -> Iterator[OwnServer]:
        bindir = embedded_bindir() if request.param == "embedded" else debian_bindir()
        if bindir is None:
            pytest.skip(f"no {request.param} PostgreSQL binaries on this machine")
        server = OwnServer(bindir, request.param)
        server.start()
        try:
            yield server
        finally:
            server.stop()

    return own_server


def drive(mode: str, boundary: int, args: list[str], report: Path,
          on_pause: Callable[[], None] | None = None, statements: Path | None = None) -> str:
    """Run the CLI through the crash driver; returns its report (``<statements> <exit code>``) or ``killed``.
    ``statements``: the counting run writes there the statement of each boundary, one line each."""
    report.unlink(missing_ok=True)
    env = {**cli_env(), "VEZA_CRASH_REPORT": str(report), "PYTHONPATH": str(REPO_ROOT),
           **({"VEZA_CRASH_STATEMENTS": str(statements)} if statements is not None else {})}
    process = subprocess.Popen([sys.executable, "-m", "tests.crash_driver", mode, str(boundary), "--", *args],
                               cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if mode == "pause":
        deadline = time.monotonic() + 120
        while not (report.exists() and report.read_text().strip()) and process.poll() is None:
            assert time.monotonic() < deadline, "the driver never reached its boundary"
            time.sleep(0.05)
        if process.poll() is None:
            assert on_pause is not None
            on_pause()
            process.send_signal(signal.SIGKILL)
    _, stderr = process.communicate(timeout=300)
    if process.returncode == -signal.SIGKILL:
        return "killed"
    assert report.exists(), stderr
    return report.read_text().strip()


def wait_for_sessions_to_end(dsn: str) -> None:
    """The killed client's server session notices the dropped connection and rolls back on its own."""
    deadline = time.monotonic() + 30
    with psycopg.connect(dsn, autocommit=True) as conn:
        while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND pid <> pg_backend_pid() AND backend_type = 'client backend'").fetchone() != (0,):
            assert time.monotonic() < deadline, "a killed client's session is still there after 30 s"
            time.sleep(0.05)


def sample(total: int, size: int) -> list[int]:
    """``size`` boundaries evenly spread over 1..total, the first and the last included."""
    if total <= size:
        return list(range(1, total + 1))
    return sorted({1 + round(i * (total - 1) / (size - 1)) for i in range(size)})


@dataclass
class Maintained:
    """A template database on an own server (schema applied, rows in): each crash point runs on a copy."""

    own: OwnServer
    schema_dir: Path
    template: str

    def database(self) -> Iterator[str]:
        name = "m_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.own.server.admin_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        try:
            yield self.own.server.dsn_for(name)
        finally:
            with psycopg.connect(self.own.server.admin_dsn, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def middle(total: int) -> int:
    """A boundary in the middle of the run (the command has statements before and after it)."""
    return (total + 1) // 2


def run_at(maintained: Maintained, command: list[str], boundary: int, tmp: Path, server_stop: bool,
           dsn: str) -> None:
    """The command on ``dsn`` stopped dead before its statement ``boundary`` (SIGKILL, or a power cut)."""
    outcome = drive("pause" if server_stop else "kill", boundary,
                    [*command, "--dsn", dsn, "--schema-dir", str(maintained.schema_dir)], tmp / f"r{boundary}",
                    on_pause=maintained.own.crash_and_restart)
    assert outcome == "killed", f"the command ended before statement {boundary}: {outcome}"
    wait_for_sessions_to_end(dsn)


def statements(maintained: Maintained, command: list[str], tmp: Path, exit_code: int = 0) -> list[str]:
    """What a counting run of the command sends, boundary by boundary (statement N is element N - 1)."""
    for dsn in maintained.database():
        log = tmp / "statements"
        outcome = drive("count", 0, [*command, "--dsn", dsn, "--schema-dir", str(maintained.schema_dir)],
                        tmp / "count", statements=log)
        count, code = outcome.split()
        assert code == str(exit_code), outcome
        sent = log.read_text().splitlines()
        assert len(sent) == int(count), outcome
        return sent
    raise AssertionError("unreachable")


def boundaries(maintained: Maintained, command: list[str], tmp: Path) -> int:
    """How many statement boundaries the command has (a counting run on a copy)."""
    return len(statements(maintained, command, tmp))


def applied_template(own: OwnServer, directory: Path, schema: str, prefix: str) -> tuple[Path, str]:
    """``schema`` (one module) generated and applied in a new database of ``own`` that the tests copy:
    its schema directory and the database's name. Generated without verification: lint's gate is not
    what crash tests are about."""
    schema_dir, migrations = directory / "schema", directory / "migrations"
    schema_dir.mkdir()
    (schema_dir / "app.yaml").write_text(schema)
    assert invoke("generate", "--schema-dir", str(schema_dir), "--migrations-dir", str(migrations),
                  "--no-verify").exit_code == 0
    template = prefix + uuid.uuid4().hex[:8]
    with psycopg.connect(own.server.admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{template}" TEMPLATE template0')
    result = invoke("apply", "--dsn", own.server.dsn_for(template), "--migrations-dir", str(migrations))
    assert result.exit_code == 0, result.output
    return schema_dir, template
