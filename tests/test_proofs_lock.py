"""The migration lock is SQLx's lock: same key, really exclusive, its holder named on timeout."""

from __future__ import annotations

import psycopg
import pytest

from tests.helpers import TestDatabase, wait_for
from veza_schema.migrations.lock import LockLost, LockTimeout, lock_key, migration_lock

# SQLx's generate_lock_id: 0x3d32ad9e * crc32(database name), worked out by hand for two names.
SQLX_KEYS = {"veza": 3555619644086019542, "postgres": 368907709894077238}


@pytest.mark.parametrize("name", sorted(SQLX_KEYS))
def test_lock_key_is_the_one_sqlx_takes(name: str) -> None:
    assert lock_key(name) == SQLX_KEYS[name]


def test_a_second_session_cannot_take_the_lock_while_it_is_held(database: TestDatabase) -> None:
    with database.connect() as holder, database.connect() as other, migration_lock(holder, timeout=5) as held:
        key = held.key
        assert key == lock_key(database.name) and held.pid == holder.info.backend_pid
        # What a Rust service running SQLx would try: the same advisory key, refused.
        assert other.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone() == (False,)
        with pytest.raises(LockTimeout) as caught, migration_lock(other, timeout=0.3, poll_interval=0.05):
            pass
        assert caught.value.holder is not None and caught.value.holder.pid == holder.info.backend_pid


def test_the_lock_is_released_when_the_block_ends(database: TestDatabase) -> None:
    with database.connect() as holder, database.connect() as other:
        with migration_lock(holder, timeout=5):
            pass
        assert other.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(database.name),)).fetchone() == (True,)


def test_lock_holder_is_found_from_the_sqlx_key(database: TestDatabase) -> None:
    """The holder query splits the 64-bit key as PostgreSQL stores it (classid, objid, objsubid 1)."""
    with database.connect() as holder, psycopg.connect(database.dsn, autocommit=True) as other:
        holder.execute("SET application_name = 'sqlx-service'")
        holder.execute("SELECT pg_advisory_lock(%s)", (SQLX_KEYS["veza"],))
        from veza_schema.migrations.lock import lock_holder

        found = lock_holder(other, SQLX_KEYS["veza"])
        assert found is not None and found.pid == holder.info.backend_pid
        assert found.application_name == "sqlx-service"


def test_a_held_lock_is_confirmed_while_its_session_lives(database: TestDatabase) -> None:
    with database.connect() as holder, database.connect() as worker, migration_lock(holder, timeout=5) as held:
        held.require(worker, "unused")  # no raise


def test_a_lock_whose_session_ended_is_reported_lost(database: TestDatabase) -> None:
    """pg_terminate_backend (or a pooler, or a network cut) ends the session, and the lock with it."""
    with database.connect() as worker, database.connect() as holder, migration_lock(holder, timeout=5) as held:
        worker.execute("SELECT pg_terminate_backend(%s)", (held.pid,))
        gone = "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = %s)"
        wait_for(lambda: worker.execute(gone, (held.pid,)).fetchone() == (True,), "the backend to exit")
        with pytest.raises(LockLost, match=r"the migration lock was lost: its session \(backend pid \d+\) "
                                           r"ended .*; the step was refused\. Run the command again"):
            held.require(worker, "the step was refused")


def test_a_lock_taken_again_by_another_session_is_not_ours(database: TestDatabase) -> None:
    """The check names our session: the key held by someone else (another apply started) is a loss too."""
    with database.connect() as worker, database.connect() as holder, database.connect() as other, \
            migration_lock(holder, timeout=5) as held:
        worker.execute("SELECT pg_terminate_backend(%s)", (held.pid,))
        wait_for(lambda: other.execute("SELECT pg_try_advisory_lock(%s)", (held.key,)).fetchone() == (True,),
                 "the lock to be free")
        with pytest.raises(LockLost):
            held.require(worker, "refused")
