"""Run many statements in one round trip (libpq pipeline mode), knowing which one failed or is slow.

Why: a migration file of 800 statements sent one at a time waits 800 times for the server;
sent as a pipeline, the server runs them back to back while the client reads the results.
Why libpq's pipeline rather than one multi-statement string: each statement gets its own
result, so a failure is pinned to its statement (and a syntax error's position to its line)
without guessing; and the server shows the statement it is running in ``pg_stat_activity``,
so a slow one can be named while it runs, without any per-statement work on the client.

The caller owns the transaction: PostgreSQL stops at the first error and skips the rest
(``PIPELINE_ABORTED``) until the sync, so inside ``conn.transaction()`` a failure leaves
nothing behind once the caller rolls back.
"""

from __future__ import annotations

import contextlib
import selectors
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq, sql
from psycopg.conninfo import make_conninfo

_DONE = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK, pq.ExecStatus.EMPTY_QUERY)


class PipelineError(Exception):
    """Statement ``index`` (0-based) failed with ``error``; the statements after it did not run."""

    def __init__(self, index: int, error: psycopg.Error) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


@dataclass(frozen=True)
class Running:
    """What a backend is running: the statement's text and for how long."""

    query: str
    seconds: float


Probe = Callable[[], Running | None]
_SHORTEST_TRACKED = 99  # the smallest track_activity_query_size (100) keeps 99 bytes of a query
_ACTIVITY = sql.SQL("SELECT query, extract(epoch FROM statement_timestamp() - query_start)::float8 "
                    "FROM pg_stat_activity WHERE pid = {} AND state = 'active'")


class ActivityProbe:
    """What the backend of ``conn`` is running, read from ``pg_stat_activity`` on a second connection
    opened on first use (only when a statement is slow) with ``conn``'s own parameters."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.observer: psycopg.Connection[Any] | None = None

    def __call__(self) -> Running | None:
        try:
            if self.observer is None:
                params = {o.keyword.decode(): o.val.decode() for o in self.conn.pgconn.info if o.val is not None}
                params.update(host=self.conn.info.host, port=str(self.conn.info.port),
                              application_name="veza-schema observer")
                params.pop("hostaddr", None)
                self.observer = psycopg.connect(make_conninfo("", **params), autocommit=True, connect_timeout=5)
            row = self.observer.execute(_ACTIVITY.format(sql.Literal(self.conn.info.backend_pid))).fetchone()
        except psycopg.Error:
            return None  # the observer is only a help: no name is better than a failed apply
        return Running(str(row[0]), float(row[1] or 0.0)) if row and row[0] is not None else None

    def close(self) -> None:
        if self.observer is not None:
            self.observer.close()
            self.observer = None


def run_pipelined(conn: psycopg.Connection[Any], statements: Sequence[bytes], *, slow_after: float = 3.0,
                  on_slow: Callable[[int, float], None] | None = None, probe: Probe | None = None) -> None:
    """Run ``statements`` in order in one pipeline.

    ``on_slow(index, seconds)`` is called once for a statement still running after
    ``slow_after`` seconds: ``probe`` (see :class:`ActivityProbe`) tells which one and since
    when; without it, the first statement whose result has not arrived is named (results come back
    in batches, so that one may have been running for less).

    Raises:
        PipelineError: the first statement that failed (PostgreSQL ran none after it).
    """
    if not statements:
        return
    pg = conn.pgconn
    pg.enter_pipeline_mode()
    reader = _Reader(pg, statements, conn.info.encoding, slow_after, on_slow, probe)
    try:
        for text in statements:
            pg.send_query_params(text, None)
        pg.pipeline_sync()
        failure = reader.read_until_sync()
    except BaseException as exc:
        # Interrupted (Ctrl-C) or the connection broke: stop the running statement (a closed
        # connection alone lets the server finish it, locks held), then close, which rolls the
        # transaction back; nothing of the batch is kept.
        with contextlib.suppress(Exception):
            conn.cancel_safe(timeout=5)
        conn.close()
        if isinstance(exc, psycopg.Error):  # the connection broke: name the statement, with the server's reason
            raise reader.failure or PipelineError(min(reader.answered, len(statements) - 1), exc) from exc
        raise
    pg.exit_pipeline_mode()
    if failure is not None:
        raise failure


class _Reader:
    """Reads the results of one pipeline, watching for a slow statement meanwhile."""

    def __init__(self, pg: Any, statements: Sequence[bytes], encoding: str, slow_after: float,
                 on_slow: Callable[[int, float], None] | None, probe: Probe | None) -> None:
        self.pg = pg
        self.statements = statements
        self.encoding = encoding
        self.slow_after = slow_after
        self.on_slow = on_slow
        self.probe = probe
        self.answered = 0  # statements whose result has arrived
        self.reported: set[int] = set()
        self.failure: PipelineError | None = None
        self.check_at = time.monotonic() + slow_after

    def read_until_sync(self) -> PipelineError | None:
        pg = self.pg
        selector = selectors.DefaultSelector()
        selector.register(pg.socket, selectors.EVENT_READ | selectors.EVENT_WRITE)
        writing = True
        try:
            while True:
                if writing and pg.flush() == 0:
                    writing = False
                    selector.modify(pg.socket, selectors.EVENT_READ)
                watching = self.on_slow is not None and self.failure is None
                timeout = max(0.0, self.check_at - time.monotonic()) if watching else None
                events = selector.select(timeout)
                if not events:
                    self._watch()
                    continue
                if any(mask & selectors.EVENT_READ for _, mask in events):
                    pg.consume_input()
                    if self._drain():
                        return self.failure
        finally:
            selector.close()

    def _drain(self) -> bool:
        """Take every result already received; True once the sync's has come."""
        pg = self.pg
        while not pg.is_busy():
            result = pg.get_result()
            if result is None and (pg.is_busy() or (result := pg.get_result()) is None):
                return False  # between two statements' results: wait for more input
            status = result.status
            if status == pq.ExecStatus.PIPELINE_SYNC:
                return True
            if status == pq.ExecStatus.FATAL_ERROR and self.failure is None:
                self.failure = PipelineError(self.answered, pg_errors.error_from_result(result,
                                                                                       encoding=self.encoding))
            elif status not in _DONE and status != pq.ExecStatus.PIPELINE_ABORTED and status != \
                    pq.ExecStatus.FATAL_ERROR:
                # COPY and friends need a client conversation a migration file cannot hold.
                raise PipelineError(self.answered, psycopg.NotSupportedError(
                    "COPY FROM STDIN / TO STDOUT cannot run from a migration file (it needs a client to stream "
                    "the rows): use INSERT, or COPY with a file on the server"))
            self.answered += 1
        return False

    def _watch(self) -> None:
        """No result for a while: name the statement running for ``slow_after`` seconds, once."""
        assert self.on_slow is not None
        running = self.probe() if self.probe is not None else None
        index, seconds = self.answered, self.slow_after
        if running is not None:
            found = self._index_of(running.query)
            if found is not None:
                index, seconds = found, running.seconds
        if seconds < self.slow_after:  # a statement that started just now: look again when it is due
            self.check_at = time.monotonic() + self.slow_after - seconds
            return
        self.check_at = time.monotonic() + self.slow_after
        if index not in self.reported and index < len(self.statements):
            self.reported.add(index)
            self.on_slow(index, seconds)

    def _index_of(self, query: str) -> int | None:
        """The first statement not yet answered whose text is ``query``."""
        wanted = query.encode("utf-8")
        truncated = len(wanted) >= _SHORTEST_TRACKED  # pg_stat_activity keeps track_activity_query_size bytes
        for index in range(self.answered, len(self.statements)):
            text = self.statements[index]
            if text == wanted or (truncated and text.startswith(wanted)):
                return index
        return None
