"""The embedded default server: what `make apply` uses when no DSN is given."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, run_cli

SAMPLE = REPO_ROOT / "tests" / "data" / "sample_schema"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A project folder of its own (schema/ and migrations/), its embedded server stopped afterwards."""
    shutil.copytree(SAMPLE, tmp_path / "schema")
    assert run_cli("generate", cwd=tmp_path).exit_code == 0
    yield tmp_path
    run_cli("db", "stop", cwd=tmp_path)


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
