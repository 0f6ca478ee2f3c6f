"""What veza-schema itself manages in a database, outside ``schema/``: one place for each fact.

The migration history table, the helper functions (prefixed ``veza_``), and the time-range
partitions with their names and periods. The introspector leaves these out of the model,
drift never reports them, and maintenance creates partitions with exactly the names and
bounds computed here (``veza_ensure_partitions`` computes the same, in SQL, in UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

HISTORY_TABLE = "_sqlx_migrations"
# Where retention moves the partitions (and the rows referencing them) it keeps as tables:
# out of `public`, so introspection and drift never see them, ready for pg_dump to cold storage.
ARCHIVE_SCHEMA = "veza_archive"
# The CHECK a partition-to-be carries while it is a standalone table: ATTACH PARTITION then
# skips scanning it, and a run interrupted mid-move recognizes its own table and resumes.
PARTITION_BOUNDS_CHECK = "veza_partition_bounds"
MANAGED_TABLES: frozenset[str] = frozenset({HISTORY_TABLE})
MANAGED_FUNCTION_PREFIX = "veza_"
PARTITION_FUNCTION = "veza_ensure_partitions"

Interval = Literal["day", "week", "month", "year"]
INTERVALS: tuple[Interval, ...] = ("day", "week", "month", "year")
_SUFFIX_FORMAT: dict[str, str] = {"year": "%Y", "month": "%Y%m"}  # day and week: %Y%m%d
_SUFFIX_PATTERN: dict[str, str] = {"year": "YYYY", "month": "YYYYMM"}  # day and week: YYYYMMDD


# Schemas veza-schema fills itself (retention's archive) or leaves to the pg_partman backend (its
# extension's schema, with the template tables pg_partman makes there): never part of the model.
MANAGED_SCHEMAS: frozenset[str] = frozenset({ARCHIVE_SCHEMA})
PARTMAN_EXTENSION = "pg_partman"


def is_managed_schema(name: str) -> bool:
    return name in MANAGED_SCHEMAS


def is_managed_table(name: str) -> bool:
    return name in MANAGED_TABLES


def is_managed_function(name: str) -> bool:
    return name.startswith(MANAGED_FUNCTION_PREFIX)


def default_partition_name(table: str) -> str:
    return f"{table}_default"


def partition_name(table: str, start: datetime, interval: str) -> str:
    """``messages_p202611`` for the month starting 2026-11-01 (``_pYYYY``, ``_pYYYYMM``, ``_pYYYYMMDD``)."""
    return f"{table}_p{start.strftime(_SUFFIX_FORMAT.get(interval, '%Y%m%d'))}"


def suffix_format(interval: str) -> str:
    """The suffix as a PostgreSQL ``to_char`` pattern (``YYYYMM``): pg_partman's ``datetime_string``."""
    return _SUFFIX_PATTERN.get(interval, "YYYYMMDD")


def period_interval(interval: str) -> str:
    """The interval as PostgreSQL text (``1 month``), as pg_partman's ``partition_interval``."""
    return f"1 {interval}"


def partition_name_pattern(table: str, interval: str) -> str:
    """The pattern of :func:`partition_name` for documentation: ``messages_pYYYYMM``."""
    return f"{table}_p{_SUFFIX_PATTERN.get(interval, 'YYYYMMDD')}"


def period_start(moment: datetime, interval: str) -> datetime:
    """``date_trunc(interval, moment)`` in UTC (ISO weeks start on Monday, like ``date_trunc``)."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    day = utc.date()
    if interval == "year":
        start = date(day.year, 1, 1)
    elif interval == "month":
        start = day.replace(day=1)
    elif interval == "week":
        start = day - timedelta(days=day.weekday())
    else:
        start = day
    return datetime(start.year, start.month, start.day, tzinfo=UTC)


def next_period(start: datetime, interval: str) -> datetime:
    if interval == "year":
        return start.replace(year=start.year + 1)
    if interval == "month":
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start + timedelta(days=7 if interval == "week" else 1)


def shift(moment: datetime, count: int, unit: str) -> datetime:
    """``moment + count units`` as PostgreSQL computes ``timestamptz + interval`` in UTC
    (months and years keep the day, clamped to the month's last day)."""
    if unit in ("month", "year"):
        months = moment.month - 1 + count * (12 if unit == "year" else 1)
        year, month = moment.year + months // 12, months % 12 + 1
        last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
        return moment.replace(year=year, month=month, day=min(moment.day, last))
    return moment + timedelta(days=count * (7 if unit == "week" else 1))


def retention_cutoff(as_of: datetime, count: int, unit: str) -> datetime:
    """Partitions ending before this are past retention (pg_partman's rule: end < now - retention)."""
    return shift(as_of, -count, unit)


def classify_span(lo: datetime, hi: datetime) -> Interval | None:
    """Which interval a partition's bounds span, if any: read back from the catalog."""
    months = (hi.year - lo.year) * 12 + hi.month - lo.month
    same_time = (lo.day, lo.time()) == (hi.day, hi.time())
    if same_time and months == 12 and lo.month == hi.month:
        return "year"
    if same_time and months == 1:
        return "month"
    if hi - lo == timedelta(days=7):
        return "week"
    if hi - lo == timedelta(days=1):
        return "day"
    return None


@dataclass(frozen=True)
class PlannedPartition:
    name: str
    start: datetime
    end: datetime


def planned_partitions(table: str, interval: str, premake: int, now: datetime) -> list[PlannedPartition]:
    """The partitions kept for a table: the current period through ``premake`` periods ahead."""
    start = period_start(now, interval)
    planned = []
    for _ in range(premake + 1):
        end = next_period(start, interval)
        planned.append(PlannedPartition(partition_name(table, start, interval), start, end))
        start = end
    return planned
