"""The migration lock: SQLx's advisory lock key, polled with a timeout, naming its holder.

Held on a dedicated autocommit connection, so the migration's own connection stays free
for ``CREATE INDEX CONCURRENTLY`` (which would otherwise wait on our own session's lock
holder forever) and a killed process releases it with its session.
"""

from __future__ import annotations

import contextlib
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import psycopg

from veza_schema.errors import DatabaseError

_TRY_LOCK = "SELECT pg_try_advisory_lock(%s)"
_UNLOCK = "SELECT pg_advisory_unlock(%s)"
# A bigint advisory key shows in pg_locks as (classid, objid) halves, objsubid 1, in its database.
_HOLDER = """
SELECT a.pid, a.application_name, host(a.client_addr), a.backend_start, a.state
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted
  AND l.classid = %s AND l.objid = %s AND l.objsubid = 1 AND l.database = (
      SELECT oid FROM pg_database WHERE datname = current_database())
"""
_HELD_BY = """
SELECT EXISTS (SELECT FROM pg_catalog.pg_locks l
               WHERE l.locktype = 'advisory' AND l.granted
                 AND l.classid = %s AND l.objid = %s AND l.objsubid = 1 AND l.database = (
                     SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
                 AND l.pid = %s)
"""


def lock_key(database: str) -> int:
    """SQLx's key: ``0x3d32ad9e * crc32(database name)``."""
    return 0x3D32AD9E * zlib.crc32(database.encode("utf-8"))


@dataclass(frozen=True)
class LockHolder:
    pid: int
    application_name: str
    client_address: str | None
    since: datetime
    state: str | None

    def __str__(self) -> str:
        where = self.client_address or "local socket"
        app = self.application_name or "(no application_name)"
        return f"pid {self.pid}, {app}, from {where}, connected since {self.since:%Y-%m-%d %H:%M:%S%z}"


class LockTimeout(DatabaseError):
    def __init__(self, seconds: float, holder: LockHolder | None) -> None:
        self.holder = holder
        who = f"held by {holder}" if holder else "its holder could not be identified"
        super().__init__(f"could not take the migration lock within {seconds:g}s: {who}. "
                         "Another apply may be running; retry later or raise --lock-timeout.")


class LockLost(DatabaseError):
    """The session holding the migration lock ended while we worked (exit 3)."""


@dataclass(frozen=True)
class HeldLock:
    """The migration lock as this run holds it: its key, and the backend of the session holding it."""

    key: int
    pid: int

    def require(self, conn: psycopg.Connection, what: str) -> None:
        """Go on only while the lock session still holds the lock: asked of the server on ``conn``
        (inside the caller's transaction), since a session ended by ``pg_terminate_backend``, a pooler
        or a network cut takes the lock with it and another apply may then start alongside. It narrows
        that window to the moments a dying backend still shows its lock; it cannot close it (the lock is
        another session's).

        Raises:
            LockLost: the lock is no longer held by our session; ``what`` says what is refused.
        """
        row = conn.execute(_HELD_BY, (*_halves(self.key), self.pid)).fetchone()
        if not (row and row[0]):
            raise LockLost(f"the migration lock was lost: its session (backend pid {self.pid}) ended while this "
                           f"run held it (pg_terminate_backend, a connection pooler or a network cut), so another "
                           f"apply may have started; {what}. Run the command again: it waits for the lock.")


def _halves(key: int) -> tuple[int, int]:
    """The two 32-bit halves pg_locks shows a bigint advisory key as (classid, objid)."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


def lock_holder(conn: psycopg.Connection, key: int) -> LockHolder | None:
    row = conn.execute(_HOLDER, _halves(key)).fetchone()
    if not row:
        return None
    return LockHolder(int(row[0]), row[1] or "", row[2], row[3], row[4])


@contextmanager
def migration_lock(conn: psycopg.Connection, timeout: float, poll_interval: float = 0.2) -> Iterator[HeldLock]:
    """Hold the lock for the duration of the block; ``conn`` must be autocommit and dedicated."""
    database = conn.info.dbname
    key = lock_key(database)
    deadline = time.monotonic() + timeout
    while True:
        row = conn.execute(_TRY_LOCK, (key,)).fetchone()
        if row and row[0]:
            break
        if time.monotonic() >= deadline:
            raise LockTimeout(timeout, lock_holder(conn, key))
        time.sleep(poll_interval)
    try:
        yield HeldLock(key, conn.info.backend_pid)
    finally:
        with contextlib.suppress(psycopg.Error):  # a dead session took its lock with it
            conn.execute(_UNLOCK, (key,))
