"""Forked processes that each read a share of the schema files, so a big schema loads on every core.

Why fork and not a pool: a child starts as a copy of this process, modules imported and caches
warm, in a few milliseconds, and needs no pickling of the work it is given. Each child writes its
answers as numbered records into an anonymous temporary file (no pipe to fill and block on
while the parent reads its own share) and ends with ``os._exit``: no ``atexit`` handler, no
buffered output of the parent flushed twice.

Exactness is the caller's: a record is an answer the parent could have worked out itself, and
what a child does not deliver (it failed, was killed, exited non-zero) the parent works out itself.
"""

from __future__ import annotations

import os
import signal
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

JOBS_ENV = "VEZA_JOBS"  # how many processes read schema files (1: this one alone); default: the usable cores
MAX_PROCESSES = 8
_HEADER = struct.Struct("=iQ")  # record number (negative: the caller's own trailer), length

Send = Callable[[int, bytes], None]


def processes() -> int:
    """How many processes may read files: ``$VEZA_JOBS``, else the cores this process may run on."""
    configured = os.environ.get(JOBS_ENV, "").strip()
    if configured.isdigit() and int(configured) > 0:
        return min(int(configured), MAX_PROCESSES)
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_PROCESSES))


def can_fork() -> bool:
    """Forking a process that runs other threads can copy a lock another thread holds: never then."""
    return hasattr(os, "fork") and threading.active_count() == 1


def shares(weights: Sequence[int], count: int) -> list[list[int]]:
    """Indexes of ``weights`` in ``count`` lists of about equal total weight (heaviest first to the
    lightest list), each list in increasing order."""
    totals = [0] * count
    split: list[list[int]] = [[] for _ in range(count)]
    for index in sorted(range(len(weights)), key=lambda i: -weights[i]):
        lightest = totals.index(min(totals))
        split[lightest].append(index)
        totals[lightest] += weights[index]
    return [sorted(share) for share in split]


@dataclass
class Worker:
    pid: int
    output: BinaryIO
    ended: bool = False


def start(job: Callable[[Send], None]) -> Worker:
    """A child process running ``job(send)``; ``send(number, data)`` keeps one record for the parent.

    Raises:
        OSError: no process could be made (the caller does the job itself).
    """
    # Already unlinked: nothing is left behind, whatever happens; closed by collect() or stop().
    output = tempfile.TemporaryFile()  # noqa: SIM115
    try:
        pid = os.fork()
    except OSError:
        output.close()
        raise
    if pid == 0:  # pragma: no cover - the child; coverage does not follow it
        code = 1
        try:
            for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # never the parent's handlers:
                signal.signal(number, signal.SIG_DFL)  # Ctrl-C or a kill ends a child at once

            def send(number: int, data: bytes) -> None:
                output.write(_HEADER.pack(number, len(data)))
                output.write(data)

            job(send)
            output.flush()
            code = 0
        finally:
            os._exit(code)
    return Worker(pid, output)


def collect(worker: Worker) -> Iterator[tuple[int, bytes]]:
    """Wait for the child, then its records one by one (never all in memory at once); none at all
    unless it ended well. A record cut short ends the records."""
    _, status = os.waitpid(worker.pid, 0)
    worker.ended = True
    with worker.output as output:
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
            return
        output.seek(0)
        while len(header := output.read(_HEADER.size)) == _HEADER.size:
            number, length = _HEADER.unpack(header)
            data = output.read(length)
            if len(data) != length:
                return
            yield number, data


def stop(worker: Worker) -> None:
    """End a child the parent no longer waits for (an exception or Ctrl-C in the parent)."""
    if worker.ended:
        return
    try:
        os.kill(worker.pid, signal.SIGKILL)
        os.waitpid(worker.pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
    worker.ended = True
    worker.output.close()
