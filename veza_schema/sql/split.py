"""Split a SQL file into statements, keeping each statement's first line number.

Needed because PostgreSQL runs a multi-statement string as one implicit transaction
(so ``CREATE INDEX CONCURRENTLY`` could never run), and because a failure should name
the line of the statement that failed. Understands quotes, dollar quotes, comments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


@dataclass(frozen=True)
class Statement:
    text: str
    line: int  # 1-based line of the statement's first non-blank character


def split_statements(sql: str) -> list[Statement]:
    """The statements of ``sql`` (a fresh list: the split itself is cached per text)."""
    return list(_split(sql))


@lru_cache(maxsize=32)  # apply splits each file twice: the data-loss guard, then the run
def _split(sql: str) -> tuple[Statement, ...]:
    statements: list[Statement] = []
    i = 0
    n = len(sql)
    start = 0
    line = 1
    start_line: int | None = None
    while i < n:
        ch = sql[i]
        if ch == "\n":
            line += 1
            i += 1
            continue
        if ch.isspace():
            i += 1
            continue
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end == -1 else end
            continue
        if sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    line += sql[i] == "\n"
                    i += 1
            continue
        if start_line is None:
            start_line = line
            start = i
        if ch in ("'", '"'):
            i += 1
            while i < n:
                if sql[i] == ch:
                    if i + 1 < n and sql[i + 1] == ch:
                        i += 2
                        continue
                    i += 1
                    break
                line += sql[i] == "\n"
                i += 1
            continue
        if ch == "$":
            match = _DOLLAR_TAG.match(sql, i)
            if match and not (i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
                tag = match.group(0)
                end = sql.find(tag, match.end())
                end = n if end == -1 else end + len(tag)
                line += sql.count("\n", i, end)
                i = end
                continue
        if ch == ";":
            text = sql[start:i].strip()
            if text:
                statements.append(Statement(text, start_line))
            start_line = None
            i += 1
            continue
        i += 1
    if start_line is not None:
        text = sql[start:].strip()
        if text:
            statements.append(Statement(text, start_line))
    return tuple(statements)
