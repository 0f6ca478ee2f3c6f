"""The round-trip corpus on PostgreSQL 15 and 18, judged by ``pg_dump -s`` (see tests/corpus_harness.py).

Acceptance of "never silent, nothing dropped": every modeled case ends exact (A equals B);
every other case is refused by name (``inspect`` names the fact it cannot write, or the
reconciling SQL names the change it will not make); and in no case does ``diff`` report no
drift while ``pg_dump -s`` differs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.corpus_harness import (
    build_veza_template,
    case_database,
    cases,
    dump_difference,
    expectation,
    round_trip,
    starts_from_veza,
)
from tests.helpers import Server


@pytest.fixture(params=["embedded", "pg15"])
def server(request: pytest.FixtureRequest) -> Server:
    return request.getfixturevalue("pg_server" if request.param == "embedded" else "pg15_server")


@pytest.fixture(scope="session")
def veza_template() -> Iterator[Callable[[Server], str]]:
    """The Veza schema applied once per server, copied by the cases that start from it."""
    built: dict[str, tuple[Server, str]] = {}

    def template_for(server: Server) -> str:
        if server.admin_dsn not in built:
            name = "corpus_veza_" + uuid.uuid4().hex[:8]
            build_veza_template(server, name)
            built[server.admin_dsn] = (server, name)
        return built[server.admin_dsn][1]

    yield template_for
    for server, name in built.values():
        try:
            with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.OperationalError:
            pass  # a throwaway server stopped first takes its databases with it


@pytest.mark.parametrize("case", cases())
def test_round_trip_is_exact_or_refused_by_name(case: str, server: Server, tmp_path: Path,
                                                 veza_template: Callable[[Server], str]) -> None:
    expected = expectation(case)
    template_a = veza_template(server) if starts_from_veza(case, "a") else "template0"
    template_b = veza_template(server) if starts_from_veza(case, "b") else "template0"
    with case_database(server, template_a) as a, case_database(server, template_b) as b:
        result = round_trip(case, a, b, tmp_path)
    assert result.back is not None
    # The judge and our diff agree, whatever the case: no "No drift" over different databases.
    assert (result.back.exit_code == 0) == result.equal, result.back.output + "\n" + dump_difference(result)
    if expected.exact:
        assert result.inspect.exit_code == 0, result.inspect.output
        assert result.equal, dump_difference(result)
        return
    for kind in expected.unmodeled:
        assert f"not in the YAML ({kind})" in result.inspect.output, result.inspect.output
        assert f"[{kind}," in result.back.output, result.back.output
    for words in expected.not_reconciled:
        refusals = [line for line in result.sql.stdout.splitlines() if line.startswith("-- not reconciled")]
        assert any(words in line for line in refusals), result.sql.stdout
    assert not result.equal, "a refused case that ends exact: its expect.yaml is stale"
