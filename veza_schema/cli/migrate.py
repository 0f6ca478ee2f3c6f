"""generate, apply, rollback, status, baseline, resolve."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from veza_schema.cli.common import (
    DEFAULT_MIGRATIONS_DIR,
    DEFAULT_SCHEMA_DIR,
    DsnOption,
    MigrationsDirOption,
    SchemaDirOption,
    ShadowDsnOption,
    check_choice,
    console,
)

if TYPE_CHECKING:
    from veza_schema.db.dsn import Target
    from veza_schema.migrations.files import MigrationFile
    from veza_schema.migrations.runner import RunResult
    from veza_schema.sql.split import Statement


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
    app.command("apply")(apply)
    app.command("rollback")(rollback)
    app.command("status")(status)
    app.command("baseline")(baseline)
    app.command("resolve")(resolve)
    app.command("hash")(hash_command)


def generate(
    name: Annotated[str | None, typer.Option("--name", help="Migration name (snake_case).")] = None,
    schema_dir: SchemaDirOption = DEFAULT_SCHEMA_DIR,
    migrations_dir: MigrationsDirOption = DEFAULT_MIGRATIONS_DIR,
    lock_timeout: Annotated[str, typer.Option("--lock-timeout", help="SET lock_timeout written at the top of "
                                                                     "each file.")] = "5s",
    statement_timeout: Annotated[str, typer.Option("--statement-timeout", help="SET statement_timeout written at "
                                                                               "the top of each file.")] = "15min",
    allow_forbidden: Annotated[bool, typer.Option("--allow-forbidden", help="Write a migration even with changes "
                                                                            "the change policy forbids (needs "
                                                                            "--rfc).")] = False,
    rfc: Annotated[str | None, typer.Option("--rfc", help="The RFC approving the changes (RFC-NNNN); required "
                                                          "with --allow-forbidden.", show_default=False)] = None,
    rfc_pattern: Annotated[str | None, typer.Option("--rfc-pattern", help="Regular expression every RFC reference "
                                                    "must match. [default: ^RFC-\\d{4,}$]",
                                                    show_default=False)] = None,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Write even if lint or PostgreSQL refuses schema/ "
                                                                "(the migration's header says so).")] = False,
    shadow_dsn: ShadowDsnOption = None,
) -> None:
    """Write the next up/down migration pair from the changes in schema/.

    Before writing, schema/ is validated as `lint` does (the model's rules, then PostgreSQL
    applying it in a scratch database): an error refuses the generation (exit 1) unless
    --no-verify. Nothing changed: nothing is written (exit 0). Example:

        veza-schema generate --name add_user_bio
    """
    from veza_schema.cli.lint import verify_before_writing
    from veza_schema.migrations import generate as gen
    from veza_schema.migrations.files import read_migrations
    from veza_schema.migrations.snapshot import SNAPSHOT_FILE, read_snapshot
    from veza_schema.yaml.loader import load_schema

    out = console()
    schema = load_schema(schema_dir)
    from veza_schema.project import DEFAULT_RFC_PATTERN, project_relative

    settings = gen.FileSettings(lock_timeout, statement_timeout, project_relative(schema_dir), unverified=no_verify)
    existing = read_migrations(migrations_dir)
    if not existing:
        verify_before_writing(schema, migrations_dir, no_verify=no_verify, shadow_dsn=shadow_dsn, schema_dir=schema_dir)
        written = gen.generate_initial(schema, migrations_dir, gen.check_name(name or "initial_schema"), settings)
        out.print(f"Wrote {written.up_path} and {written.down_path.name}: {len(schema.tables)} tables, "
                  f"{len(schema.indexes)} indexes.")
        return
    from veza_schema.migrations.sumfile import require_current_sum, write_sum

    require_current_sum(migrations_dir)  # first: a snapshot edited to match schema/ must not mean "nothing to do"
    snapshot = read_snapshot(migrations_dir)
    if snapshot is None:
        from veza_schema.errors import MigrationFileError

        raise MigrationFileError(f"{migrations_dir / SNAPSHOT_FILE} is missing: it records the schema the "
                                 "existing migrations produce; restore it from git")
    if snapshot == schema:
        out.print("Nothing to generate: the migrations already produce schema/.")
        return
    from veza_schema.migrations import incremental
    from veza_schema.policy import check_generate
    from veza_schema.policy.base import prior_from_git

    verify_before_writing(schema, migrations_dir, no_verify=no_verify, shadow_dsn=shadow_dsn, schema_dir=schema_dir)
    policy = check_generate(snapshot, schema, allow_forbidden=allow_forbidden, rfc=rfc,  # refuses forbidden
                            prior=prior_from_git(schema_dir),                    # changes (exit 1)
                            rfc_pattern=rfc_pattern or DEFAULT_RFC_PATTERN)
    for decision in policy.missing_rfc:
        out.print(f"[yellow]warning:[/] {decision.code} {decision.summary.lstrip('+-~> ')}: RFC-required, "
                  f"{decision.rfc_error} (`veza-schema check` fails until it has one)", markup=True)
    written_files = incremental.generate_incremental(snapshot, schema, migrations_dir, name, settings,
                                                     allow_forbidden=allow_forbidden, rfc_lookup=policy.rfc_for,
                                                     extra_rfcs=[rfc] if rfc else [])
    if not written_files:
        out.print("Nothing to generate: the changes need no SQL.")
    for written in written_files:
        out.print(f"Wrote {written.up_path} and {written.down_path.name}.")
    write_sum(migrations_dir)


def _target(dsn: str | None) -> Target:
    from veza_schema.db.dsn import resolve_dsn

    target = resolve_dsn(dsn)
    console().print(f"Database: {target.display} [dim]({target.source})[/]")
    return target


def _files(migrations_dir: Path, check_sum: bool = True) -> list[MigrationFile]:
    from veza_schema.migrations.files import read_migrations
    from veza_schema.migrations.sumfile import require_current_sum

    files = read_migrations(migrations_dir)
    if check_sum:
        require_current_sum(migrations_dir)
    return files


class _ConsoleReporter:
    """One line per migration; per statement for non-transactional steps, and for any statement
    still running after a few seconds (so a DBA watching a long index build sees which one)."""

    def __init__(self) -> None:
        self.out = console()

    def migration_started(self, migration: MigrationFile, direction: str) -> None:
        arrow = "↑" if direction == "up" else "↓"
        self.out.print(f"  {arrow} {migration.version} {migration.description} ...", end="")

    def statement_started(self, migration: MigrationFile, statement: Statement, index: int, total: int) -> None:
        if total > 1:
            self.out.print(f"\n      statement {index}/{total} (line {statement.line})", end="")

    def statement_slow(self, migration: MigrationFile, statement: Statement, index: int, total: int,
                       seconds: float) -> None:
        first_line = statement.text.splitlines()[0][:70]
        self.out.print(f"\n      still running statement {index}/{total} (line {statement.line}): {first_line}",
                       end="", markup=False)

    def migration_finished(self, migration: MigrationFile, direction: str, seconds: float) -> None:
        self.out.print(f" [green]done[/] ({seconds:.2f}s)")

    def retrying(self, migration: MigrationFile, attempt: int, delay: float, reason: str) -> None:
        self.out.print(f"\n      [yellow]lock not available, retry {attempt} in {delay:.1f}s[/]", end="")


def _print_plan(result: RunResult) -> None:
    out = console()
    if not result.steps:
        out.print("-- nothing to run")
        return
    for step in result.steps:
        path = step.migration.up_path if step.direction == "up" else step.migration.down_path
        out.print(f"-- {path} ({'in a transaction' if step.transactional else 'no transaction'})", markup=False)
        text = step.sql if step.sql.endswith("\n") else step.sql + "\n"
        out.print(("BEGIN;\n" + text + "COMMIT;") if step.transactional else text.rstrip("\n"), markup=False)


def _summary(target: Target) -> str:
    from veza_schema.db.catalog import count_objects
    from veza_schema.db.dsn import connect

    conn = connect(target, autocommit=True)
    try:
        return str(count_objects(conn))
    finally:
        conn.close()


def apply(
    dsn: DsnOption = None,
    migrations_dir: MigrationsDirOption = DEFAULT_MIGRATIONS_DIR,
    to: Annotated[int | None, typer.Option("--to", help="Stop after this version.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print exactly the SQL that would run; "
                                                            "touch nothing.")] = False,
    lock_timeout: Annotated[float, typer.Option("--lock-timeout", help="Seconds to wait for the migration "
                                                                       "lock.")] = 60.0,
    allow_out_of_order: Annotated[bool, typer.Option("--allow-out-of-order", help="Apply unapplied versions "
                                                     "older than the newest applied one.")] = False,
    allow_data_loss: Annotated[bool, typer.Option("--allow-data-loss", help="Run steps that destroy data (DROP "
                                                  "TABLE/COLUMN with rows, narrowing type changes).")] = False,
) -> None:
    """Apply pending migrations in version order, each file with its history row.

    Example:

        veza-schema apply --dsn postgresql://veza@db.internal/veza
    """
    from veza_schema.migrations import runner

    target = _target(dsn)
    files = _files(migrations_dir)
    options = runner.RunOptions(lock_timeout=lock_timeout, allow_out_of_order=allow_out_of_order,
                                reporter=_ConsoleReporter(), allow_data_loss=allow_data_loss)
    result = runner.apply(target, files, to=to, dry_run=dry_run, options=options)
    if dry_run:
        _print_plan(result)
        return
    out = console()
    if not result.steps:
        out.print(f"Nothing to apply: {len(files)} migration(s), all applied. {_summary(target)}.")
        return
    out.print(f"[bold green]Applied {len(result.steps)} migration(s)[/] in {result.seconds:.2f}s: "
              f"{_summary(target)}.")


def rollback(
    dsn: DsnOption = None,
    migrations_dir: MigrationsDirOption = DEFAULT_MIGRATIONS_DIR,
    steps: Annotated[int | None, typer.Option("--steps", help="How many migrations to roll back "
                                                              "(default 1).", min=1)] = None,
    to: Annotated[int | None, typer.Option("--to", help="Roll back every migration newer than this version "
                                                        "(0: all).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the SQL; touch nothing.")] = False,
    lock_timeout: Annotated[float, typer.Option("--lock-timeout", help="Seconds to wait for the lock.")] = 60.0,
    allow_data_loss: Annotated[bool, typer.Option("--allow-data-loss", help="Run down files that destroy data "
                                                  "(e.g. drop a table created by the migration that now has "
                                                  "rows).")] = False,
) -> None:
    """Run down files, newest first.

    Example:

        veza-schema rollback --steps 1
    """
    from veza_schema.errors import UsageError
    from veza_schema.migrations import runner

    if steps is not None and to is not None:
        raise UsageError("give --steps or --to, not both")
    target = _target(dsn)
    options = runner.RunOptions(lock_timeout=lock_timeout, reporter=_ConsoleReporter(),
                                allow_data_loss=allow_data_loss)
    result = runner.rollback(target, _files(migrations_dir), steps=steps, to=to, dry_run=dry_run, options=options)
    if dry_run:
        _print_plan(result)
        return
    if not result.steps:
        console().print("Nothing to roll back.")
        return
    console().print(f"[bold green]Rolled back {len(result.steps)} migration(s)[/] in {result.seconds:.2f}s.")


def status(
    dsn: DsnOption = None,
    migrations_dir: MigrationsDirOption = DEFAULT_MIGRATIONS_DIR,
    output_format: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
) -> None:
    """Show applied, pending, modified, missing, failed and out-of-order migrations.

    Exit 0 when the database is up to date, 1 otherwise. Example:

        veza-schema status --format json
    """
    from veza_schema.db.dsn import resolve_dsn
    from veza_schema.migrations import runner

    check_choice(output_format, ("text", "json"), "--format")
    target = resolve_dsn(dsn)
    from veza_schema.migrations.status import status_document
    from veza_schema.migrations.sumfile import verify_sum

    states = runner.read_states(target, _files(migrations_dir, check_sum=False))
    stale_sum = verify_sum(migrations_dir)
    up_to_date = all(s.state == "applied" for s in states) and not stale_sum
    if output_format == "json":
        document = status_document(target.display, states, up_to_date)
        document["sum_file"] = [{"file": p.name, "problem": p.problem} for p in stale_sum]
        print(json.dumps(document, indent=2))
    else:
        _print_status(target.display, states, up_to_date)
        for problem in stale_sum:
            console().print(f"[red]veza.sum:[/] {problem.name} {problem.problem} (run `veza-schema hash` "
                            "if intended)")
    raise typer.Exit(0 if up_to_date else 1)


def _print_status(database: str, states: list, up_to_date: bool) -> None:
    from rich.table import Table

    out = console()
    out.print(f"Database: {database}")
    colors = {"applied": "green", "pending": "yellow", "modified": "red", "missing": "red", "failed": "red",
              "out_of_order": "magenta"}
    table = Table(show_edge=False, pad_edge=False)
    for column in ("version", "name", "state", "installed on", "detail"):
        table.add_column(column)
    for s in states:
        installed = s.applied.installed_on.strftime("%Y-%m-%d %H:%M:%S") if s.applied else ""
        table.add_row(str(s.version), s.name, f"[{colors[s.state]}]{s.state}[/]", installed, s.detail)
    if states:
        out.print(table)
    out.print("Up to date." if up_to_date else "[yellow]Not up to date.[/]")


def baseline(
    version: Annotated[int, typer.Option("--version", help="Mark every migration up to this version as applied.")],
    dsn: DsnOption = None,
    migrations_dir: MigrationsDirOption = DEFAULT_MIGRATIONS_DIR,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty history.")] = False,
) -> None:
    """Mark an existing database as being at VERSION without running anything.

    Example:

        veza-schema baseline --version 20261125120000
    """
    from veza_schema.migrations import runner

    target = _target(dsn)
    chosen = runner.baseline(target, _files(migrations_dir), version, force=force)
    console().print(f"Baselined at {version}: {len(chosen)} migration(s) recorded as applied, nothing run.")


def resolve(
    version: Annotated[int, typer.Argument(help="Version of the failed migration.")],
    applied: Annotated[bool, typer.Option("--applied", help="You completed it by hand: record it applied.")] = False,
    rolled_back: Annotated[bool, typer.Option("--rolled-back", help="You undid it: forget it, so apply runs it "
                                                                    "again.")] = False,
    dsn: DsnOption = None,
    migrations_dir: MigrationsDirOption = DEFAULT_MIGRATIONS_DIR,
) -> None:
    """Clear a failed migration after a human fixed the database.

    Example:

        veza-schema resolve 20261125120000 --rolled-back
    """
    from veza_schema.errors import UsageError
    from veza_schema.migrations import runner

    if applied == rolled_back:
        raise UsageError("give exactly one of --applied or --rolled-back")
    target = _target(dsn)
    outcome = runner.resolve(target, _files(migrations_dir), version, applied=applied)
    console().print(f"Migration {version} resolved as {outcome}.")


def hash_command(migrations_dir: MigrationsDirOption = DEFAULT_MIGRATIONS_DIR) -> None:
    """Rewrite migrations/veza.sum after a deliberate change to the migration files.

    Example:

        veza-schema hash
    """
    from veza_schema.migrations.files import read_migrations
    from veza_schema.migrations.sumfile import write_sum

    files = read_migrations(migrations_dir)
    path = write_sum(migrations_dir)
    console().print(f"Wrote {path} ({len(files)} migration(s)).")
