"""The round-trip corpus on PostgreSQL 15 and 18, judged by ``pg_dump -s`` (see tests/corpus_harness.py).

Acceptance of "never silent, nothing dropped": every modeled case ends exact (A equals B);
every other case is refused by name (``inspect`` names the fact it cannot write, or the
reconciling SQL names the change it will not make); and in no case does ``diff`` report no
drift while ``pg_dump -s`` differs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.corpus_harness import cases, dump_difference, expectation, round_trip
from tests.helpers import Server, fresh_database


@pytest.fixture(params=["embedded", "pg15"])
def server(request: pytest.FixtureRequest) -> Server:
    return request.getfixturevalue("pg_server" if request.param == "embedded" else "pg15_server")


@pytest.mark.parametrize("case", cases())
def test_round_trip_is_exact_or_refused_by_name(case: str, server: Server, tmp_path: Path) -> None:
    expected = expectation(case)
    for a in fresh_database(server):
        for b in fresh_database(server):
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
