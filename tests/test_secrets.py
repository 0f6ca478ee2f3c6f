"""No password is ever printed: every DSN form, malformed ones included, in every command's output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import TestDatabase, invoke
from veza_schema.db.dsn import malformed_reason, redact, redact_text

SECRET = "s3cr3t-Pa55"
UNREACHABLE = "127.0.0.1:1"

# Every form a password can take in a DSN, each pointing at a port nobody listens on.
FORMS = {
    "uri user-info": f"postgresql://bob:{SECRET}@{UNREACHABLE}/veza",
    "uri password parameter": f"postgresql://bob@{UNREACHABLE}/veza?password={SECRET}",
    "uri sslpassword parameter": f"postgresql://bob@{UNREACHABLE}/veza?sslmode=prefer&sslpassword={SECRET}",
    "uri percent-encoded parameter name": f"postgresql://bob@{UNREACHABLE}/veza?pass%77ord={SECRET}",
    "postgres scheme": f"postgres://bob:{SECRET}@{UNREACHABLE}/veza",
    "key=value": f"host=127.0.0.1 port=1 user=bob password={SECRET} dbname=veza",
    "key=value quoted": f"host=127.0.0.1 port=1 user=bob password='{SECRET} x' dbname=veza",
}
MALFORMED = {
    "uri with a broken host": f"postgresql://bob:{SECRET}@[broken/veza",
    "uri query without '='": f"postgresql://bob@{UNREACHABLE}/veza?{SECRET}",
    "uri bad escape in the password": f"postgresql://bob:{SECRET}%zz@{UNREACHABLE}/veza",
    "key=value without '='": f"host=127.0.0.1 password {SECRET}",
    "key=value unterminated quote": f"host=127.0.0.1 password='{SECRET}",
    "key=value unknown key": f"host=127.0.0.1 passwd={SECRET}",
}
COMMANDS = [
    ("apply",), ("rollback",), ("status",), ("status", "--format", "json"), ("baseline", "--version", "1"),
    ("resolve", "1", "--applied"), ("diff", "--offline"), ("diff", "--offline", "--format", "json"),
    ("inspect", "--out", "OUT"), ("partitions",), ("refresh",), ("purge",), ("schedule",),
]


PROJECT_YAML = """\
module: app
tables:
  events:
    columns:
      id: uuid
      created_at: timestamptz
    partition_by: {range: [created_at]}
  notices:
    columns:
      id: uuid
      created_at: timestamptz
    purge: {column: created_at, after: 30 days}
views:
  event_count:
    query: SELECT count(*) AS n FROM events
    materialized: true
"""


def _project(tmp_path: Path) -> Path:
    """A project whose every command needs the database (a partitioned table, a materialized view, a purge)."""
    (tmp_path / "schema").mkdir(parents=True)
    (tmp_path / "schema" / "app.yaml").write_text(PROJECT_YAML)
    (tmp_path / "migrations").mkdir()
    return tmp_path


@pytest.mark.parametrize("form", sorted(FORMS))
def test_redact_masks_the_password_of_every_dsn_form(form: str) -> None:
    shown = redact(FORMS[form])
    assert SECRET not in shown and "***" in shown


@pytest.mark.parametrize("form", sorted(MALFORMED))
def test_a_malformed_dsn_is_described_never_shown(form: str) -> None:
    reason = malformed_reason(MALFORMED[form])
    assert reason is not None and SECRET not in reason
    assert redact(MALFORMED[form]) == "(malformed DSN)"


@pytest.mark.parametrize("form", sorted(FORMS) + sorted(MALFORMED))
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_no_command_prints_the_password(tmp_path: Path, form: str, command: tuple[str, ...]) -> None:
    project = _project(tmp_path)
    dsn = {**FORMS, **MALFORMED}[form]
    args = [str(project / "out") if arg == "OUT" else arg for arg in command]
    result = invoke(*args, "--dsn", dsn, cwd=project)
    assert result.exit_code in (2, 3), result.output
    assert SECRET not in result.output
    assert SECRET.replace("-", "%2D") not in result.output


@pytest.mark.parametrize("variable", ["VEZA_DATABASE_URL", "DATABASE_URL"])
def test_a_dsn_from_the_environment_is_not_printed_either(tmp_path: Path, variable: str) -> None:
    for dsn in (FORMS["uri user-info"], MALFORMED["uri with a broken host"]):
        result = invoke("status", cwd=_project(tmp_path / variable / str(len(dsn))), env={variable: dsn})
        assert result.exit_code == 3 and SECRET not in result.output, result.output


def test_pgpassword_and_a_service_file_are_never_printed(tmp_path: Path) -> None:
    project = _project(tmp_path)
    result = invoke("status", cwd=project, env={"PGHOST": "127.0.0.1", "PGPORT": "1", "PGPASSWORD": SECRET})
    assert result.exit_code == 3 and SECRET not in result.output, result.output
    services = tmp_path / "pg_service.conf"
    services.write_text(f"[veza]\nhost=127.0.0.1\nport=1\nuser=bob\npassword={SECRET}\n")
    result = invoke("status", "--dsn", "service=veza", cwd=project, env={"PGSERVICEFILE": str(services)})
    assert result.exit_code == 3 and SECRET not in result.output, result.output


def test_the_json_database_field_of_a_reachable_server_shows_no_password(database: TestDatabase,
                                                                         tmp_path: Path) -> None:
    """The test server trusts local connections, so a DSN with a password still connects."""
    dsn = database.dsn.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")
    assert dsn != database.dsn
    result = invoke("status", "--format", "json", "--dsn", dsn, cwd=_project(tmp_path))
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert SECRET not in result.output and document["database"].startswith("postgresql://postgres:***@")


def test_a_traceback_goes_through_the_same_redaction() -> None:
    traceback = (f'Traceback (most recent call last):\n  File "x.py", line 1\n'
                 f"psycopg.OperationalError: connection to postgresql://bob:{SECRET}@db/veza failed\n"
                 f"  conninfo: host=db password={SECRET} user=bob\n")
    scrubbed = redact_text(traceback, [SECRET])
    assert SECRET not in scrubbed and "postgresql://bob:***@db/veza" in scrubbed


def test_a_dsn_given_as_an_option_with_equals_is_not_printed(tmp_path: Path) -> None:
    for dsn in (FORMS["uri user-info"], MALFORMED["key=value without '='"]):
        result = invoke("status", f"--dsn={dsn}", cwd=_project(tmp_path / str(len(dsn))))
        assert result.exit_code == 3 and SECRET not in result.output, result.output


@pytest.mark.parametrize("form", sorted(FORMS) + sorted(MALFORMED))
def test_config_shows_a_shadow_dsn_from_the_environment_without_its_password(tmp_path: Path, form: str) -> None:
    dsn = {**FORMS, **MALFORMED}[form]
    for output in ("text", "json"):
        result = invoke("config", "--format", output, cwd=_project(tmp_path / output),
                        env={"VEZA_SHADOW_DSN": dsn})
        assert result.exit_code == 0, result.output
        assert "VEZA_SHADOW_DSN" in result.output and SECRET not in result.output, result.output


def test_schedule_does_not_print_the_password_of_its_cron_dsn(tmp_path: Path, database: TestDatabase) -> None:
    for dsn in (FORMS["uri user-info"], MALFORMED["uri with a broken host"]):
        result = invoke("schedule", "--dsn", database.dsn, "--cron-dsn", dsn, cwd=_project(tmp_path / str(len(dsn))))
        assert result.exit_code in (2, 3) and SECRET not in result.output, result.output
