"""The embedded default server: what `make apply` uses when no DSN is given."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, run_cli

SAMPLE = REPO_ROOT / "tests" / "data" / "sample_schema"


@pytest.fixture
def project() -> Iterator[Path]:
    """A project folder of its own (schema/ and migrations/), its embedded server stopped afterwards.
    Outside pytest's temporary root: the server runs as another OS user when we are root, and a pytest
    session starting meanwhile closes that root to others (initdb then fails half-way)."""
    root = Path(tempfile.mkdtemp(prefix="veza-embedded-"))
    try:
        shutil.copytree(SAMPLE, root / "schema")
        assert run_cli("generate", cwd=root).exit_code == 0
        yield root
        run_cli("db", "stop", cwd=root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_apply_without_dsn_uses_the_embedded_server_and_prints_its_dsn(project: Path) -> None:
    result = run_cli("apply", cwd=project)
    assert result.exit_code == 0, result.output
    assert "embedded server" in result.stdout
    assert f"host={project}/.veza/pgdata" in result.stdout
    assert "Applied 1 migration(s)" in result.stdout
    again = run_cli("apply", cwd=project)
    assert again.exit_code == 0 and "Nothing to apply" in again.stdout


def test_db_commands_start_report_and_stop_the_server(project: Path) -> None:
    assert run_cli("db", "status", cwd=project).exit_code == 1
    started = run_cli("db", "start", cwd=project)
    assert started.exit_code == 0 and "Embedded server running" in started.stdout
    status = run_cli("db", "status", cwd=project)
    assert status.exit_code == 0 and status.stdout.startswith("running (pid ")
    url = run_cli("db", "url", cwd=project)
    assert url.exit_code == 0 and url.stdout.strip().startswith("postgresql://postgres@/postgres?host=")
    stopped = run_cli("db", "stop", cwd=project)
    assert stopped.exit_code == 0 and "stopped" in stopped.stdout
    assert run_cli("db", "url", cwd=project).exit_code == 1


def test_db_stop_that_times_out_is_a_database_error_naming_the_way_out(project: Path) -> None:
    """pg_ctl giving up (a long shutdown checkpoint) is exit 3 with advice, not a traceback."""
    assert run_cli("db", "start", cwd=project).exit_code == 0
    timed_out = run_cli("db", "stop", "--timeout", "0", cwd=project)
    assert timed_out.exit_code == 3, timed_out.output
    assert "did not stop within 0 s" in timed_out.stderr and "--immediate" in timed_out.stderr
    assert "Traceback" not in timed_out.output
    assert run_cli("db", "stop", cwd=project).exit_code == 0


def test_db_stop_immediate_stops_the_server_and_it_starts_again(project: Path) -> None:
    assert run_cli("db", "start", cwd=project).exit_code == 0
    stopped = run_cli("db", "stop", "--immediate", cwd=project)
    assert stopped.exit_code == 0 and "stopped" in stopped.stdout
    assert run_cli("db", "status", cwd=project).exit_code == 1
    assert run_cli("db", "start", cwd=project).exit_code == 0


def test_the_embedded_server_is_socket_only_and_its_folder_owner_only(project: Path) -> None:
    """It trusts local connections, so nobody but its owner may reach it (docs/security.md)."""
    import stat

    import psycopg

    started = run_cli("db", "start", cwd=project)
    assert started.exit_code == 0, started.output
    conf = (project / ".veza" / "pgdata" / "postgresql.conf").read_text()
    assert "listen_addresses = ''" in conf and "unix_socket_permissions = 0700" in conf
    assert stat.S_IMODE((project / ".veza").stat().st_mode) == 0o700
    url = run_cli("db", "url", cwd=project).stdout.strip()
    with psycopg.connect(url) as conn:
        settings = conn.execute("SELECT current_setting('listen_addresses'), "
                                "current_setting('unix_socket_permissions')").fetchone()
    assert settings == ("", "0700")


@pytest.mark.skipif(os.geteuid() != 0, reason="the server runs as an OS user of its own only when we are root")
def test_as_root_the_server_starts_in_a_project_whose_folder_others_cannot_enter(project: Path) -> None:
    """initdb runs as the server's OS user, which must traverse every parent of the data directory."""
    project.chmod(0o700)
    started = run_cli("db", "start", cwd=project)
    assert started.exit_code == 0, started.output
