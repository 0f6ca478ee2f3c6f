"""Every supported PostgreSQL major (13 to 18): migration proofs on each, and shadow databases of
the target's own major (``--shadow-dsn docker://IMAGE``, or a container chosen by ``diff``).

Where a major has no server here (no local binaries, no image, no Docker engine), its tests
are skipped with the reason; ``make test`` prints the matrix in its header.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import SCENARIOS, Scenario
from tests.fixtures.servers import (
    MATRIX,
    WHEEL_PACKAGE,
    Plan,
    closed_to_others,
    plan,
    pytest_report_header,
    require_extensions,
    require_image,
    server_of,
    wheel_bindirs,
)
from tests.helpers import REPO_ROOT, Server, TestDatabase, fresh_database, run_cli
from tests.test_migration_proofs import prove
from veza_schema.db import introspect
from veza_schema.db.servers import (
    SUPPORTED_MAJORS,
    debian_bindirs,
    docker_image,
    docker_image_present,
    docker_pull,
    embedded_major,
)
from veza_schema.errors import UsageError
from veza_schema.model import PUBLIC_ROLE

OTHER_MAJORS = [param for param in MATRIX if param != f"pg{embedded_major()}"]
# The suite points every command's shadow at the test server (VEZA_SHADOW_DSN); these tests are about diff's own choice.
DEFAULT_SHADOW: dict[str, str | None] = {"VEZA_SHADOW_DSN": None}


@pytest.fixture(params=OTHER_MAJORS)
def major_server(request: pytest.FixtureRequest) -> Server:
    """A server of each supported major but the embedded one (test_migration_proofs covers that)."""
    return server_of(request, request.param)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_migration_proof_on_each_major(scenario: Scenario, major_server: Server, tmp_path: Path) -> None:
    for database in fresh_database(major_server):
        for reference in fresh_database(major_server):
            prove(scenario, database, reference, tmp_path)


# -- where each major runs ------------------------------------------------------------------------------

def test_a_server_wheel_is_found_by_its_files_without_importing_its_python_layer() -> None:
    """Its major comes from ``postgres --version``: importing the package would start its Python layer."""
    probe = ("import sys; from tests.fixtures.servers import wheel_bindirs; "
             f"print(repr((sorted(wheel_bindirs()), {WHEEL_PACKAGE!r} in sys.modules)))")
    said = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    found, imported = ast.literal_eval(said.stdout.strip())
    assert not imported
    if not wheel_bindirs():
        pytest.skip(f"no server wheel ({WHEEL_PACKAGE}) installed")
    assert found == sorted(wheel_bindirs())


def test_a_major_without_debian_binaries_runs_on_its_wheel_before_any_container(
        monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    majors = {major: bindir for major, bindir in wheel_bindirs().items()
              if major not in debian_bindirs() and major != embedded_major()}
    if not majors:
        pytest.skip(f"no server wheel ({WHEEL_PACKAGE}) of a major without Debian binaries here")
    for major, bindir in majors.items():
        for chosen in ("auto", "local"):
            monkeypatch.setenv("VEZA_TEST_BACKEND", chosen)
            assert plan.__wrapped__(major) == Plan(major, "wheel", str(bindir))
    monkeypatch.delenv("VEZA_TEST_BACKEND")
    header = pytest_report_header(request.config)
    assert all(f"{major} {WHEEL_PACKAGE} wheel" in header for major in majors if plan(major).kind == "wheel")


def test_binaries_behind_a_directory_closed_to_others_are_found_unusable(tmp_path: Path) -> None:
    """As root the server runs as another OS user: a wheel in a private home cannot be started by it."""
    private = tmp_path / "home"
    (private / "venv" / "bin").mkdir(parents=True)
    private.chmod(0o700)
    closed = closed_to_others(private / "venv" / "bin")
    assert closed is not None and closed in (private, *private.parents)
    assert closed_to_others(Path("/usr/bin")) is None  # where a system's binaries are: open to all


def test_the_wheel_server_runs_the_major_its_binaries_say(request: pytest.FixtureRequest) -> None:
    majors = [major for major in wheel_bindirs() if plan(major).kind == "wheel"]
    if not majors:
        pytest.skip(f"the matrix runs no major on a server wheel ({WHEEL_PACKAGE}) here")
    assert [server_of(request, f"pg{major}").version() for major in majors] == majors


def test_a_test_needing_an_extension_the_server_lacks_skips_naming_it(database_each_server: TestDatabase) -> None:
    require_extensions(database_each_server.server, "plpgsql")
    with pytest.raises(pytest.skip.Exception, match=r"lacks the veza_no_such_extension extension$"):
        require_extensions(database_each_server.server, "plpgsql", "veza_no_such_extension")


# -- shadow databases of the target's major ---------------------------------------------------------------

def applied_database(request: pytest.FixtureRequest, param: str) -> Iterator[TestDatabase]:
    for database in fresh_database(server_of(request, param)):
        result = run_cli("apply", "--dsn", database.dsn)
        assert result.exit_code == 0, result.output
        yield database


@pytest.fixture
def pg15_database(request: pytest.FixtureRequest) -> Iterator[TestDatabase]:
    """The shipped schema applied to a PostgreSQL 15 database."""
    yield from applied_database(request, "pg15")


def test_diff_through_a_container_of_the_same_major_is_exact(pg15_database: TestDatabase) -> None:
    require_image("postgres:15")
    result = run_cli("diff", "--dsn", pg15_database.dsn, "--shadow-dsn", "docker://postgres:15")
    assert result.exit_code == 0, result.output
    assert "through a shadow database on a postgres:15 container" in result.stdout
    assert "No drift." in result.stdout
    assert "note:" not in result.stdout and "normaliz" not in result.output


def test_diff_without_a_shadow_uses_a_container_of_the_targets_major(request: pytest.FixtureRequest) -> None:
    require_image("postgres:13")
    for database in applied_database(request, "pg13"):
        result = run_cli("diff", "--dsn", database.dsn, "--format", "json", env=DEFAULT_SHADOW)
        assert result.exit_code == 0, result.output
        assert '"shadow": "a postgres:13 container"' in result.stdout
        assert '"warnings": []' in result.stdout


def test_diff_without_docker_falls_back_to_the_embedded_server_and_says_why(pg15_database: TestDatabase) -> None:
    result = run_cli("diff", "--dsn", pg15_database.dsn,
                     env={**DEFAULT_SHADOW, "DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert result.exit_code == 0, result.output
    assert "through a shadow database on the embedded server" in result.stdout
    assert "no shadow server of PostgreSQL 15: no Docker engine answers" in result.stdout
    assert "the shadow server runs PostgreSQL 18, the database 15" in result.stdout


def test_a_container_shadow_that_cannot_start_is_a_database_error(pg15_database: TestDatabase) -> None:
    result = run_cli("diff", "--dsn", pg15_database.dsn, "--shadow-dsn", "docker://postgres:15",
                     env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert result.exit_code == 3, result.output
    assert "cannot start a postgres:15 container: no Docker engine answers" in result.stderr


def test_a_container_that_cannot_start_falls_back_to_the_embedded_server_unless_asked_for(
        request: pytest.FixtureRequest) -> None:
    """The reaper container testcontainers starts first cannot be pulled on a machine without a registry:
    diff's own choice of a container gives way to the embedded server; an explicit one is an error."""
    from testcontainers.core.config import testcontainers_config

    require_image("postgres:13")
    if docker_image_present(testcontainers_config.ryuk_image) or docker_pull(testcontainers_config.ryuk_image):
        pytest.skip("the reaper image can be had here: a container starts")
    for database in applied_database(request, "pg13"):
        # The cache off: a kept model of this image would answer without starting anything.
        reaper: dict[str, str | None] = {**DEFAULT_SHADOW, "TESTCONTAINERS_RYUK_DISABLED": "false",
                                         "VEZA_NO_CACHE": "1"}
        chosen = run_cli("diff", "--dsn", database.dsn, env=reaper)
        assert chosen.exit_code == 0, chosen.output
        assert "through a shadow database on the embedded server" in chosen.stdout
        assert "no shadow server of PostgreSQL 13: cannot start a postgres:13 container" in chosen.stdout
        asked = run_cli("diff", "--dsn", database.dsn, "--shadow-dsn", "docker://postgres:13", env=reaper)
        assert asked.exit_code == 3
        assert "set TESTCONTAINERS_RYUK_DISABLED=true" in asked.stderr


@pytest.mark.parametrize("spec", ["docker://", "docker://Postgres:15", "docker://postgres:15 ; rm -rf /",
                                  "docker://postgres::15"])
def test_a_docker_shadow_that_is_not_an_image_reference_is_exit_2(spec: str) -> None:
    with pytest.raises(UsageError, match="expected docker://IMAGE"):
        docker_image(spec)
    assert run_cli("diff", "--dsn", "postgresql://nobody@127.0.0.1:1/x", "--shadow-dsn", spec).exit_code == 2


@pytest.mark.parametrize("spec", ["docker://postgres:15", "docker://postgres", "docker://ghcr.io/acme/pg:17.2",
                                  "docker://localhost:5000/postgres:16-alpine"])
def test_docker_image_references_are_accepted(spec: str) -> None:
    assert docker_image(spec) == spec.removeprefix("docker://")


# -- what each major's catalog has ------------------------------------------------------------------------

def test_every_version_dependent_fragment_is_in_an_introspection_query() -> None:
    queries = [value for name, value in vars(introspect).items() if name.startswith("_") and isinstance(value, str)
               and "SELECT" in value]
    for since, text, _ in introspect._SINCE:
        assert any(text in query for query in queries), (since, text)


def test_old_majors_get_queries_without_the_columns_they_lack() -> None:
    query = introspect._CONSTRAINTS
    assert "confdelsetcols" in introspect.for_server(query, 150000)
    assert "confdelsetcols" not in introspect.for_server(query, 140000)
    assert "indnullsnotdistinct" not in introspect.for_server(query, 130012)
    assert "prosqlbody" not in introspect.for_server(introspect._FUNCTIONS, 130012)
    assert "prosqlbody" in introspect.for_server(introspect._FUNCTIONS, 140000)
    assert "typsubscript" not in introspect.for_server(introspect._TYPES, 130012)
    assert "typsubscript" in introspect.for_server(introspect._TYPES, 140000)


def test_server_defaults_are_not_reported_as_hand_changes() -> None:
    assert introspect._home_schema_default("public", 130012) == {PUBLIC_ROLE: ("create", "usage")}
    assert introspect._home_schema_default("public", 150000) == {PUBLIC_ROLE: ("usage",)}
    assert "pg_attver=22119544".startswith(introspect._SERVER_ATTOPTIONS)


def test_the_readme_declares_the_supported_majors() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    declared = re.search(r"Supported PostgreSQL versions: (\d+) to (\d+)", readme)
    assert declared is not None
    assert (int(declared.group(1)), int(declared.group(2))) == (SUPPORTED_MAJORS[0], SUPPORTED_MAJORS[-1])
