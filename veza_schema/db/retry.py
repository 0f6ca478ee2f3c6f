"""Retrying work that gave up waiting for a lock (``lock_timeout``, SQLSTATE 55P03).

One policy for every writer of DDL: the migration runner and the partition maintenance job
wait at most ``lock_timeout`` per attempt (so writers never queue behind them for longer),
then retry the whole unit of work after an exponential, jittered backoff.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import psycopg

LOCK_NOT_AVAILABLE = "55P03"

T = TypeVar("T")


def backoff_delay(backoff: float, attempt: int) -> float:
    """Seconds before retry ``attempt`` (1-based): ``backoff * 2^(attempt-1)``, jittered by +-50%."""
    return backoff * (2 ** (attempt - 1)) * (0.5 + random.random())


@dataclass(frozen=True)
class LockRetry:
    """How long one attempt may wait for a lock, and how often to try again."""

    lock_timeout: float = 2.0  # seconds
    retries: int = 5
    backoff: float = 0.5
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    @property
    def lock_timeout_setting(self) -> str:
        """The value for ``SET lock_timeout`` (milliseconds, at least 1)."""
        return f"{max(1, round(self.lock_timeout * 1000))}ms"


def is_lock_timeout(exc: psycopg.Error) -> bool:
    return getattr(exc, "sqlstate", None) == LOCK_NOT_AVAILABLE


def retry_on_lock_timeout(action: Callable[[], T], policy: LockRetry,
                          on_retry: Callable[[int, float, BaseException], None] = lambda attempt, delay, exc: None,
                          retryable: Callable[[psycopg.Error], bool] = is_lock_timeout) -> T:
    """Run ``action``; when it fails on a lock timeout (or another ``retryable`` error), wait and
    run it again, ``policy.retries`` times at most.

    ``action`` must be a whole transaction: a retry starts it from the beginning.
    """
    attempt = 0
    while True:
        try:
            return action()
        except psycopg.Error as exc:
            if not retryable(exc) or attempt >= policy.retries:
                raise
            attempt += 1
            delay = backoff_delay(policy.backoff, attempt)
            on_retry(attempt, delay, exc)
            policy.sleep(delay)
