"""Is this database at version V? Compare it with what the migrations up to V build.

Why: ``baseline --version V`` records migrations as applied without running them; if the
database does not hold what they create, the next ``apply`` fails on a missing relation, or
worse, succeeds on top of a different schema. So the migrations up to V are replayed in a
throwaway shadow database (the embedded server, or ``--shadow-dsn``), both databases are
introspected, and compared like with like as ``diff`` does (:mod:`.compare`): managed
objects and partitions made ahead by maintenance are not differences.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from veza_schema.db.dsn import Target
from veza_schema.db.errors import database_error
from veza_schema.db.introspect import IntrospectionStats, introspect
from veza_schema.db.shadow import shadow_database
from veza_schema.drift.compare import DriftReport, align_expressions, compare, module_map, without_invalid_indexes
from veza_schema.errors import DatabaseError
from veza_schema.migrations import runner
from veza_schema.migrations.files import MigrationFile
from veza_schema.model import Schema


def built_by_migrations(files: Sequence[MigrationFile], version: int, shadow_dsn: str | None = None,
                        stats: IntrospectionStats | None = None) -> tuple[Schema, int]:
    """(model, server_version_num) of a shadow database where the migrations up to ``version`` ran.

    Raises:
        DatabaseError: the shadow server is unreachable, or a migration fails there.
    """
    with shadow_database(shadow_dsn) as dsn:
        try:
            runner.apply(Target(dsn, "shadow database"), list(files), to=version)
        except DatabaseError as exc:
            raise DatabaseError(f"the migrations up to {version} do not build in a shadow database: {exc}",
                                exc.sqlstate) from exc
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
                return introspect(conn, stats=stats), conn.info.server_version
        except psycopg.Error as exc:
            raise database_error("cannot read the shadow database", exc) from exc


def compare_with_migrations(conn: psycopg.Connection[Any], files: Sequence[MigrationFile], version: int, *,
                            shadow_dsn: str | None = None, database: str = "") -> DriftReport:
    """The database behind ``conn`` against the schema the migrations up to ``version`` build.

    A create/add change (``+``) is something the database lacks, a drop (``-``) something it
    has that the migrations do not create, ``~`` something it has differently.
    """
    stats = IntrospectionStats()
    expected, expected_version = built_by_migrations(files, version, shadow_dsn, IntrospectionStats())
    live = introspect(conn, stats=stats)
    live = without_invalid_indexes(live, expected, stats)
    if expected_version // 10000 != conn.info.server_version // 10000:
        live = align_expressions(live, expected)
    changes = compare(live, expected)
    return DriftReport(changes=tuple(changes), current=live, desired=expected, mode="shadow", database=database,
                       warnings=tuple(stats.warnings), queries=stats.queries, seconds=stats.seconds,
                       modules=module_map(expected))
