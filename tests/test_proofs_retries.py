"""lock_timeout (55P03) is retried exactly as many times as configured, then reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import TestDatabase, run_cli
from veza_schema.db.dsn import Target
from veza_schema.migrations import runner
from veza_schema.migrations.files import MigrationFile, read_migrations


class Retries(runner.SilentReporter):
    def __init__(self) -> None:
        self.attempts: list[int] = []

    def retrying(self, migration: MigrationFile, attempt: int, delay: float, reason: str) -> None:
        self.attempts.append(attempt)


@pytest.mark.parametrize("no_transaction", [False, True], ids=["transactional", "no_transaction"])
def test_a_lock_never_released_is_retried_the_configured_number_of_times(database: TestDatabase, tmp_path: Path,
                                                                        no_transaction: bool) -> None:
    database.execute("CREATE TABLE busy (id integer)")
    migrations = tmp_path / "m"
    migrations.mkdir()
    marker = "-- no-transaction\n" if no_transaction else ""
    (migrations / "1_alter_busy.up.sql").write_text(f"{marker}SET lock_timeout = '50ms';\n"
                                                    "ALTER TABLE busy ADD COLUMN note text;\n")
    assert run_cli("hash", "--migrations-dir", str(migrations)).exit_code == 0
    reporter = Retries()
    options = runner.RunOptions(retries=2, backoff=0.01, reporter=reporter, sleep=lambda seconds: None)
    with database.connect() as blocker:
        blocker.autocommit = False
        blocker.execute("SELECT * FROM busy")  # ACCESS SHARE until the end of the test
        with pytest.raises(runner.MigrationFailed, match="lock_timeout|lock timeout|55P03"):
            runner.apply(Target(database.dsn, "test"), read_migrations(migrations), options=options)
        blocker.rollback()
    assert reporter.attempts == [1, 2]
