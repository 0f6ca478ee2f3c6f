"""The life of time partitions through `veza-schema partitions`, the same on both backends.

Every test runs twice on PostgreSQL 15: with the built-in backend, and with pg_partman 4.x
(``backend: partman``; skipped with the reason when the Debian packages cannot be installed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Server, fresh_database
from tests.partition_scenarios import Lifecycle, apply_scenario, month, suffix
from veza_schema.managed import ARCHIVE_SCHEMA


@pytest.fixture(params=["builtin", "partman"])
def life(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lifecycle]:
    if request.param == "partman":
        database = request.getfixturevalue("partman_database")
        yield apply_scenario(database, tmp_path, "partman")
        return
    server: Server = request.getfixturevalue("pg15_server")
    for database in fresh_database(server):
        yield apply_scenario(database, tmp_path, "builtin")


def test_a_freshly_applied_schema_is_up_to_date(life: Lifecycle) -> None:
    before = life.partition_names("messages")
    first = life.partitions()
    assert first.exit_code == 0, first.output
    assert "messages (month, 3 ahead, retention 24 months, then archive" in first.stdout
    if life.backend == "partman":  # the first run gives pg_partman the retention declared in schema/
        assert "~ pg_partman part_config.retention: None -> 3 months" in first.stdout
        assert "part_config.retention:" not in first.stdout.split("messages (")[1]  # this job's, see below
    again = life.partitions()
    assert again.stdout.count("up to date, 0 partition(s) created") == 2, again.output
    assert life.partition_names("messages") == before == sorted(
        [*(f"messages{suffix(k)}" for k in range(4)), "messages_default"])


def test_rows_ahead_of_premake_move_into_their_new_partitions(life: Lifecycle) -> None:
    room = life.room()
    messages = [life.message(room, month(5, day)) for day in (1, 9, 28)] + [life.message(room, month(4))]
    for message in messages:
        life.reaction(message)
    life.event(month(5), 4)
    ids = {table: life.ids(table) for table in ("messages", "events", "message_reactions")}

    result = life.partitions("--premake", "6")

    assert result.exit_code == 0, result.output
    assert f"+ created messages{suffix(5)} FOR VALUES FROM ('{month(5, 1):%Y-%m-%d}') TO " \
           f"('{month(6, 1):%Y-%m-%d}'), moved 3 row(s) out of messages_default" in result.stdout
    assert f"+ created events{suffix(5)}" in result.stdout and f"+ created events{suffix(6)}" in result.stdout
    assert life.count("ONLY messages_default") == life.count("ONLY events_default") == 0
    assert life.count(f"messages{suffix(5)}") == 3 and life.count(f"messages{suffix(4)}") == 1
    assert {table: life.ids(table) for table in ids} == ids  # every row present, none twice
    again = life.partitions("--premake", "6")
    assert again.exit_code == 0 and again.stdout.count("up to date, 0 partition(s) created") == 2


def test_rows_move_in_batches_without_loss_or_duplicates(life: Lifecycle) -> None:
    life.event(month(5), 7)
    before = life.ids("events")
    result = life.partitions("events", "--premake", "5", "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert "moved 7 row(s) out of events_default" in result.stdout
    assert life.ids(f"events{suffix(5)}") == life.ids("events") == before


def test_rows_in_no_partition_to_be_created_are_reported_per_month(life: Lifecycle) -> None:
    life.event(month(9), 2)
    life.event(month(11))
    life.event(month(5))
    result = life.partitions("--premake", "5")
    assert result.exit_code == 1, result.output
    assert (f"! 3 row(s) in events_default belong to no partition to be created ({month(9):%Y-%m}: 2, "
            f"{month(11):%Y-%m}: 1)") in result.stdout
    assert f"+ created events{suffix(5)}" in result.stdout  # what can be done is done
    assert "Needs attention: events." in result.stdout
    assert life.count("ONLY events_default") == 3


def test_dry_run_says_exactly_what_a_run_does(life: Lifecycle) -> None:
    room = life.room()
    life.message(room, month(5))
    life.event(month(9))
    before = {table: life.partition_names(table) for table in ("messages", "events")}

    dry = life.partitions("--premake", "5", "--dry-run")

    assert dry.exit_code == 1, dry.output  # the stray event needs attention, as in a real run
    assert {table: life.partition_names(table) for table in before} == before
    assert life.count("ONLY messages_default") == 1
    planned = sorted(line.split()[3] for line in dry.stdout.splitlines() if "+ would create" in line)
    assert f"messages{suffix(5)} FOR VALUES" in dry.stdout and "moving 1 row(s) out of messages_default" in dry.stdout
    assert "! 1 row(s) in events_default belong to no partition to be created" in dry.stdout
    done = life.partitions("--premake", "5")
    created = sorted(line.split()[2] for line in done.stdout.splitlines() if "+ created" in line)
    assert created == planned == sorted(f"{t}{suffix(k)}" for t in ("events", "messages") for k in (4, 5))


def test_retention_archives_a_month_of_messages_with_reactions_and_replies(life: Lifecycle) -> None:
    assert life.partitions("--as-of", f"{month(-1, 1):%Y-%m-%d}").exit_code == 0  # a partition for last month
    room = life.room()
    older = life.message(room, month(-1))
    current = life.message(room, month(0), reply_to=older)  # points out of the current month
    life.message(room, month(0), reply_to=current)  # within it
    later = life.message(room, month(1), reply_to=current)  # points into it
    for message in (older, current, later):
        life.reaction(message)
    totals = {t: life.count(t) for t in ("messages", "message_reactions")}

    result = life.partitions("--as-of", f"{month(27, 1):%Y-%m-%d}")

    assert result.exit_code == 0, result.output
    assert f"- messages{suffix(0)} [{month(0, 1):%Y-%m-%d}, {month(1, 1):%Y-%m-%d}): detached, moved to " \
           f"{ARCHIVE_SCHEMA}.messages{suffix(0)}" in result.stdout
    assert f"first archive 1 row(s) of message_reactions referencing it (fk_message_reactions_messages, ON DELETE " \
           f"CASCADE) to {ARCHIVE_SCHEMA}.message_reactions{suffix(0)}" in result.stdout
    assert f"messages{suffix(0)}" not in life.partition_names("messages")
    assert life.count(f"{ARCHIVE_SCHEMA}.messages{suffix(0)}") == 2
    assert life.count(f"{ARCHIVE_SCHEMA}.message_reactions{suffix(0)}") == 1
    archived = sum(life.count(f"{ARCHIVE_SCHEMA}.messages{suffix(k)}") for k in (-1, 0, 1))
    archived_reactions = sum(life.count(f"{ARCHIVE_SCHEMA}.message_reactions{suffix(k)}") for k in (-1, 0, 1))
    assert life.count("messages") + archived == totals["messages"]  # nothing lost
    assert life.count("message_reactions") + archived_reactions == totals["message_reactions"]
    ((reply_to,),) = life.db.query(f"SELECT reply_to_id::text FROM {ARCHIVE_SCHEMA}.messages{suffix(1)}")
    assert reply_to == current[0]  # a reply keeps naming the message it answered, archived or not


def test_retention_drops_partitions_declared_to_be_dropped(life: Lifecycle) -> None:
    life.event(month(0), 3)
    result = life.partitions("events", "--as-of", f"{month(5, 1):%Y-%m-%d}")
    assert result.exit_code == 0, result.output
    assert f"- events{suffix(0)} [{month(0, 1):%Y-%m-%d}, {month(1, 1):%Y-%m-%d}): detached and dropped" \
           in result.stdout
    assert f"events{suffix(0)}" not in life.partition_names("events")
    assert life.db.query("SELECT to_regclass(%s), to_regclass(%s)",
                         (f"events{suffix(0)}", f"{ARCHIVE_SCHEMA}.events{suffix(0)}")) == [(None, None)]
    assert life.count("events") == 0


def test_dry_run_lists_retention_and_changes_nothing(life: Lifecycle) -> None:
    room = life.room()
    life.reaction(life.message(room, month(0)))
    before = life.partition_names("messages")
    result = life.partitions("messages", "--as-of", f"{month(27, 1):%Y-%m-%d}", "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"- messages{suffix(0)} [{month(0, 1):%Y-%m-%d}, {month(1, 1):%Y-%m-%d}): would detach, move to " \
           f"{ARCHIVE_SCHEMA}.messages{suffix(0)}" in result.stdout
    assert "first archive 1 row(s) of message_reactions referencing it" in result.stdout
    assert life.partition_names("messages") == before
    assert life.count("message_reactions") == 1


def test_check_is_ok_once_partitions_has_run(life: Lifecycle) -> None:
    assert life.partitions().exit_code == 0
    result = life.partitions("--check", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert [(t["table"], t["future_partitions"], t["default_rows"]) for t in report["tables"]] == \
        [("events", 3, 0), ("messages", 3, 0)]


def test_check_alerts_on_rows_in_a_default_partition(life: Lifecycle) -> None:
    life.event(month(8), 2)
    result = life.partitions("--check", "--format", "json")
    assert result.exit_code == 1, result.output
    events = next(t for t in json.loads(result.stdout)["tables"] if t["table"] == "events")
    assert events["ok"] is False
    assert events["default_rows"] == 2 and events["default_rows_by_period"] == {f"{month(8):%Y-%m}": 2}
    assert life.count("ONLY events_default") == 2  # --check changes nothing


def test_check_alerts_on_missing_and_expired_partitions(life: Lifecycle) -> None:
    ahead = json.loads(life.partitions("--check", "--format", "json", "--as-of",
                                       f"{month(2, 1):%Y-%m-%d}").stdout)
    messages = next(t for t in ahead["tables"] if t["table"] == "messages")
    assert messages["missing_partitions"] == [f"messages{suffix(4)}", f"messages{suffix(5)}"]
    late = life.partitions("--check", "--as-of", f"{month(6, 1):%Y-%m-%d}")
    assert late.exit_code == 1, late.output
    assert f"! past retention: events{suffix(0)}, events{suffix(1)}" in late.stdout
