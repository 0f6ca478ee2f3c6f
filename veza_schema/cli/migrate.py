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
    Output,
    SchemaDirOption,
    ShadowDsnOption,
    check_choice,
    console,
)

if TYPE_CHECKING:
    from veza_schema.db.dsn import Target
    from veza_schema.migrations.files import MigrationFile
    from veza_schema.migrations.generate import WrittenMigration
    from veza_schema.migrations.runner import RunResult
    from veza_schema.policy import PolicyReport
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
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option("--name", help="Migration name (snake_case). Default: what "
                                                            "changed, e.g. add_tracks_isrc.")] = None,
    schema_dir: SchemaDirOption = DEFAULT_SCHEMA_DIR,
    migrations_dir: MigrationsDirOption = DEFAULT_MIGRATIONS_DIR,
    lock_timeout: Annotated[str, typer.Option("--lock-timeout", help="SET lock_timeout written at the top of "
                                                                     "each file.")] = "5s",
    statement_timeout: Annotated[str, typer.Option("--statement-timeout", help="SET statement_timeout written at "
                                                                               "the top of each file.")] = "15min",
    allow_forbidden: Annotated[bool, typer.Option("--allow-forbidden", help="Write a migration even with changes "
                                                                            "the change policy forbids (needs "
                                                                            "--rfc).")] = False,
    rfc: Annotated[str | None, typer.Option("--rfc", help="The RFC approving the changes (RFC-NNNN): covers "
                                                          "RFC-required changes that name none; required with "
                                                          "--allow-forbidden.", show_default=False)] = None,
    rfc_pattern: Annotated[str | None, typer.Option("--rfc-pattern", help="Regular expression every RFC reference "
                                                    "must match. [default: ^RFC-\\d{4,}$]",
                                                    show_default=False)] = None,
    max_locks_per_file: Annotated[int, typer.Option(
        "--max-locks-per-file", min=1,
        help="Lock-table slots one transactional file may hold: a larger change is cut into several files of "
             "one change. The default fits max_locks_per_transaction = 64 with 10 connections. Also "
             "$VEZA_MAX_LOCKS_PER_FILE or the max-locks-per-file setting.")] = 500,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Write even if lint or PostgreSQL refuses schema/ "
                                                                "(the migration's header says so).")] = False,
    shadow_dsn: ShadowDsnOption = None,
) -> None:
    """Write the next change (one or more up/down pairs) from the changes in schema/.

    `generate` gives the same verdict as `veza-schema check --base migrations`: a forbidden
    change, or an RFC-required one without an RFC, is refused (exit 1) unless --rfc (and
    --allow-forbidden) approve it. A change that needs several files (a concurrent index, an
    enum value, more relations than a small server's lock table holds) is still one change:
    `rollback` undoes it whole. A change that needs no SQL (a deprecation) is recorded in the
    snapshot. Before writing, schema/ is validated as `lint` does (the model's rules, then
    PostgreSQL applying it in a scratch database, with the project's lint select, ignore and
    severity settings): an error refuses the generation (exit 1) unless --no-verify. Nothing
    changed: nothing is written (exit 0). Example:

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

    settings = gen.FileSettings(lock_timeout, statement_timeout, project_relative(schema_dir),
                                max_locks=max_locks_per_file, unverified=no_verify)
    existing = read_migrations(migrations_dir)
    if not existing:
        verify_before_writing(schema, migrations_dir, no_verify=no_verify, shadow_dsn=shadow_dsn, schema_dir=schema_dir,
                              project=ctx.find_root().obj)
        written = gen.generate_initial(schema, migrations_dir, gen.check_name(name or "initial_schema"), settings)
        _print_written(written, max_locks_per_file)
        out.print(f"{len(schema.tables)} tables, {len(schema.indexes)} indexes.")
        return
    from veza_schema.migrations.sumfile import require_current_sum, write_sum

    require_current_sum(migrations_dir)  # first: a snapshot edited to match schema/ must not mean "nothing to do"
    snapshot = read_snapshot(migrations_dir)
    if snapshot is None:
        from veza_schema.errors import MigrationFileError

        raise MigrationFileError(f"{migrations_dir / SNAPSHOT_FILE} is missing: it records the schema the "
                                 "existing migrations produce; restore it from git")
    from veza_schema.migrations.snapshot import snapshot_changed

    if snapshot == schema and not snapshot_changed(migrations_dir, schema):
        out.print("Nothing to generate: the migrations already produce schema/.")
        return
    from veza_schema.migrations import incremental
    from veza_schema.policy import check_generate
    from veza_schema.policy.base import prior_from_git

    verify_before_writing(schema, migrations_dir, no_verify=no_verify, shadow_dsn=shadow_dsn, schema_dir=schema_dir,
                              project=ctx.find_root().obj)
    policy = check_generate(snapshot, schema, allow_forbidden=allow_forbidden, rfc=rfc,  # refuses forbidden
                            prior=prior_from_git(schema_dir),                    # changes (exit 1)
                            rfc_pattern=rfc_pattern or DEFAULT_RFC_PATTERN)
    _refuse_missing_rfcs(policy)
    written_files = incremental.generate_incremental(snapshot, schema, migrations_dir, name, settings,
                                                     allow_forbidden=allow_forbidden, rfc_lookup=policy.rfc_for,
                                                     extra_rfcs=[rfc] if rfc else [])
    if written_files:
        _print_written(written_files, max_locks_per_file)
    elif snapshot_changed(migrations_dir, schema):
        from veza_schema.migrations.snapshot import write_snapshot

        write_snapshot(migrations_dir, schema)
        recorded = [d.summary.lstrip("+-~> ") for d in policy.decisions if d.change is None]
        what = "; ".join(recorded) if recorded else "changes that need no SQL (module membership, expression spelling)"
        out.print(f"No SQL needed. Recorded in {migrations_dir / SNAPSHOT_FILE}: {what}. Commit it with "
                  "schema/: `check --base migrations` and the next `generate` read it.", markup=False)
    else:
        out.print("Nothing to generate: the changes need no SQL.")
        return
    write_sum(migrations_dir)


def _refuse_missing_rfcs(policy: PolicyReport) -> None:
    """One verdict with `check`: an RFC-required change without an RFC is refused here too (exit 1)."""
    from veza_schema.policy import PolicyViolation

    if not policy.missing_rfc:
        return
    lines = [f"{len(policy.missing_rfc)} change(s) need an RFC and name none; nothing was written:"]
    for decision in policy.missing_rfc:
        where = f"{decision.pos}: " if decision.pos else ""
        lines.append(f"  {where}{decision.code} {decision.policy.rule.name}: {decision.summary.lstrip('+-~> ')}: "
                     f"{decision.rfc_error}")
    lines.append("Add `rfc: RFC-NNNN` to the object or its table, or pass --rfc RFC-NNNN (see "
                 "docs/change-policy.md); `veza-schema check` gives the same verdict")
    raise PolicyViolation("\n".join(lines))


def _print_written(written: list[WrittenMigration], max_locks: int) -> None:
    """One line for a one-file change; for several files, the change, each file and why it is separate."""
    out = console()
    if len(written) == 1:
        only = written[0]
        how = "in a transaction" if only.transactional else "no transaction"
        out.print(f"Wrote {only.up_path} and {only.down_path.name} ({how}).", markup=False)
        return
    first = written[0]
    label = first.role.change.label if first.role.change is not None else f"{first.version}_{first.name}"
    out.print(f"Wrote change {label} as {len(written)} files in {first.up_path.parent}/ (one change: "
              f"`veza-schema rollback` undoes all {len(written)}):", markup=False)
    index = 0
    while index < len(written):
        parts = 0
        while index + parts < len(written) and written[index + parts].role.why.startswith("part "):
            parts += 1
        if parts > 3:  # a large change cut to fit the lock table: one line for the run
            out.print(f"  {written[index].up_path.name} .. {written[index + parts - 1].up_path.name} (in a "
                      f"transaction each): {parts} parts, each holding at most {max_locks} lock-table slots "
                      "(max_locks_per_transaction)", markup=False)
            index += parts
            continue
        item = written[index]
        how = "in a transaction" if item.transactional else "no transaction"
        out.print(f"  {item.up_path.name} ({how}): {item.role.why}", markup=False)
        index += 1


def _target(dsn: str | None) -> Target:
    from veza_schema.db.dsn import resolve_dsn

    target = resolve_dsn(dsn)
    Output.stdout().line(f"Database: {target.display} ", (f"({target.source})", "dim"))
    return target


def _files(migrations_dir: Path, check_sum: bool = True) -> list[MigrationFile]:
    from veza_schema.migrations.files import read_migrations
    from veza_schema.migrations.sumfile import require_current_sum

    files = read_migrations(migrations_dir)
    if check_sum:
        require_current_sum(migrations_dir)
    return files


def _summary(statement: Statement, width: int = 80) -> str:
    """A statement on one line, cut to ``width``: ``DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index WHERE...``
    says more than its first line (``DO $$``) would."""
    text = " ".join(statement.text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


class _ConsoleReporter:
    """Progress on stdout, one line per migration file: ``  ↑ 2026... add tracks isrc ... done (0.05s)``.

    A no-transaction file also gets a line per statement, and the runner names any statement
    still running after ``RunOptions.slow_after`` seconds through ``statement_slow`` (a DBA
    watching a long index build sees which one). A line left open is closed before anything
    else is printed (and with "failed" when a file fails), so the error, printed on stderr by
    the CLI, starts on a line of its own.
    """

    def __init__(self, out: Output) -> None:
        self.out = out
        self._line_open = False

    def _print(self, text: str, *, open_line: bool = False, continue_line: bool = False) -> None:
        if self._line_open and not continue_line:
            self.out.line()
        self.out.line(text, end="" if open_line else "\n")
        self._line_open = open_line

    def migration_started(self, migration: MigrationFile, direction: str) -> None:
        arrow = "↑" if direction == "up" else "↓"
        self._print(f"  {arrow} {migration.version} {migration.description} ...", open_line=True)

    def statement_started(self, migration: MigrationFile, statement: Statement, index: int, total: int) -> None:
        if total > 1:  # each commits on its own: a log must say which ones ran
            self._print(f"      statement {index}/{total} (line {statement.line}): {_summary(statement)}")

    def statement_slow(self, migration: MigrationFile, statement: Statement, index: int, total: int,
                       seconds: float) -> None:
        self._print(f"      still running statement {index}/{total} (line {statement.line}): {_summary(statement)}")

    def migration_finished(self, migration: MigrationFile, direction: str, seconds: float) -> None:
        if self._line_open:
            self._print(f" done ({seconds:.2f}s)", continue_line=True)
        else:
            self._print(f"      done ({seconds:.2f}s)")

    def migration_failed(self, migration: MigrationFile, direction: str) -> None:
        if self._line_open:
            self._print(" failed", continue_line=True)
        else:
            self._print("      failed")

    def retrying(self, migration: MigrationFile, attempt: int, delay: float, reason: str) -> None:
        self._print(f"      lock not available, retry {attempt} in {delay:.1f}s")


def _print_plan(result: RunResult, out: Output) -> None:
    if not result.steps:
        out.line("-- nothing to run")
        return
    for step in result.steps:
        path = step.migration.up_path if step.direction == "up" else step.migration.down_path
        out.line(f"-- {path} ({'in a transaction' if step.transactional else 'no transaction'})")
        text = step.sql if step.sql.endswith("\n") else step.sql + "\n"
        out.line(("BEGIN;\n" + text + "COMMIT;") if step.transactional else text.rstrip("\n"))


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
    import gc

    from veza_schema.migrations import runner

    gc.freeze()  # what the imports made lives until exit: no collection, the one at exit included (~30 ms
    # after psycopg's import), scans it again

    target = _target(dsn)
    files = _files(migrations_dir)
    out = Output.stdout()
    options = runner.RunOptions(lock_timeout=lock_timeout, allow_out_of_order=allow_out_of_order,
                                reporter=_ConsoleReporter(out), allow_data_loss=allow_data_loss)
    result = runner.apply(target, files, to=to, dry_run=dry_run, options=options)
    if dry_run:
        _print_plan(result, out)
        return
    if not result.steps:
        out.line(f"Nothing to apply: {len(files)} migration(s), all applied. {result.counts}.")
        return
    changes = len({step.migration.change.version for step in result.steps})
    out.line((f"Applied {len(result.steps)} migration(s)", "bold green"),
             f" ({changes} change(s)) in {result.seconds:.2f}s: {result.counts}.")
    last = result.steps[-1].migration.change
    if last.part < last.parts:
        out.line(("note:", "yellow"), f" --to {to} stops inside change {last.label} (file {last.part} of "
                 f"{last.parts}): it is partly applied; `apply` finishes it, `rollback` undoes what ran.")


def rollback(
    dsn: DsnOption = None,
    migrations_dir: MigrationsDirOption = DEFAULT_MIGRATIONS_DIR,
    steps: Annotated[int | None, typer.Option("--steps", help="How many changes to roll back (default 1): every "
                                                              "file of each (or files, with --by-file).",
                                              min=1)] = None,
    by_file: Annotated[bool, typer.Option("--by-file", help="Count --steps in single files, not changes (may "
                                                            "leave a change half applied).")] = False,
    to: Annotated[int | None, typer.Option("--to", help="Roll back every migration newer than this version "
                                                        "(0: all).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the SQL; touch nothing.")] = False,
    lock_timeout: Annotated[float, typer.Option("--lock-timeout", help="Seconds to wait for the lock.")] = 60.0,
    allow_data_loss: Annotated[bool, typer.Option("--allow-data-loss", help="Run down files that destroy data "
                                                  "(e.g. drop a table created by the migration that now has "
                                                  "rows).")] = False,
) -> None:
    """Undo the last change (all the files one `generate` wrote), newest file first.

    Examples:

        veza-schema rollback

        veza-schema rollback --steps 2 --dry-run
    """
    import gc

    from veza_schema.errors import UsageError
    from veza_schema.migrations import runner

    gc.freeze()  # as in apply
    if steps is not None and to is not None:
        raise UsageError("give --steps or --to, not both")
    if by_file and to is not None:
        raise UsageError("--by-file counts --steps; --to already names a version")
    target = _target(dsn)
    out = Output.stdout()
    options = runner.RunOptions(lock_timeout=lock_timeout, reporter=_ConsoleReporter(out),
                                allow_data_loss=allow_data_loss)
    result = runner.rollback(target, _files(migrations_dir), steps=steps, to=to, by_file=by_file, dry_run=dry_run,
                             options=options)
    if dry_run:
        _print_plan(result, out)
        return
    if not result.steps:
        out.line("Nothing to roll back.")
        return
    changes = len({step.migration.change.version for step in result.steps})
    out.line((f"Rolled back {len(result.steps)} migration(s)", "bold green"),
             f" ({changes} change(s)) in {result.seconds:.2f}s.")


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
    """Aligned columns that never wrap (a piped status stays one line per file); colors on a terminal."""
    from veza_schema.migrations.status import status_lines

    out = console()
    out.print(f"Database: {database}", markup=False)
    colors = {"applied": "green", "pending": "yellow", "modified": "red", "missing": "red", "failed": "red",
              "out_of_order": "magenta", "partly applied": "yellow"}
    rows = status_lines(states)
    if len(rows) > 1:
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        color = out.is_terminal and not out.no_color
        for number, row in enumerate(rows):
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
            line = "  ".join(cells).rstrip()
            if color and number and row[2] in colors:
                from rich.markup import escape

                cells = [escape(cell) for cell in cells]
                cells[2] = f"[{colors[row[2]]}]{cells[2]}[/]"
                out.print("  ".join(cells).rstrip())
            else:
                out.print(line, markup=False, style="bold" if color and not number else None)
    out.print("Up to date." if up_to_date else "Not up to date.", markup=False)


def baseline(
    version: Annotated[int, typer.Option("--version", help="Mark every migration up to this version as applied.")],
    dsn: DsnOption = None,
    migrations_dir: MigrationsDirOption = DEFAULT_MIGRATIONS_DIR,
    force: Annotated[bool, typer.Option("--force", help="Record even when the database differs from what the "
                                                        "migrations build, or its history is not empty.")] = False,
    shadow_dsn: Annotated[str | None, typer.Option("--shadow-dsn", help="Server to replay the migrations on "
                                                   "for the check (needs CREATEDB). Default: the embedded "
                                                   "server.", show_default=False)] = None,
) -> None:
    """Mark an existing database as being at VERSION without running anything, once it is checked.

    The migrations up to VERSION are replayed in a shadow database and the result compared
    with this database; a difference is printed and refused (exit 3) unless --force.
    Example:

        veza-schema baseline --version 20261125120000
    """
    from veza_schema.db.dsn import connect
    from veza_schema.drift.baseline import compare_with_migrations
    from veza_schema.errors import DatabaseStateError, UsageError
    from veza_schema.migrations import runner

    target = _target(dsn)
    files = _files(migrations_dir)
    if not any(f.version == version for f in files):
        raise UsageError(f"--version {version}: no migration file has that version")
    conn = connect(target, autocommit=True)
    try:
        report = compare_with_migrations(conn, files, version, shadow_dsn=shadow_dsn, database=target.display)
    finally:
        conn.close()
    if report.drift:
        from veza_schema.drift.report import changes_tree, count_items

        out = console()
        views = set(report.current.views) | set(report.desired.views)
        out.print(changes_tree(f"[bold]The database differs from what the migrations up to {version} build[/] "
                               "[dim](+ missing from the database, - only in the database, ~ different)[/]",
                               report.changes, report.modules, views), soft_wrap=False)
        counts = count_items(report.changes)
        summary = (f"{sum(counts.values())} difference(s): {counts['missing']} missing, {counts['extra']} extra, "
                   f"{counts['different']} different")
        if not force:
            raise DatabaseStateError(f"baseline refused: the database is not at {version} ({summary}). Bring it "
                                     "there first (`veza-schema diff` shows the SQL for the YAML), or pick the "
                                     "version it is at; --force records it anyway")
        out.print(f"[yellow]--force: recording anyway[/] ({summary}).")
    chosen = runner.baseline(target, files, version, force=force)
    console().print(f"Baselined at {version}: {len(chosen)} migration(s) recorded as applied, nothing run"
                    + ("." if report.drift else "; the database matches what they build."))


def resolve(
    version: Annotated[int, typer.Argument(help="Version of the failed migration.")],
    applied: Annotated[bool, typer.Option("--applied", help="You completed it by hand: record it applied.")] = False,
    rolled_back: Annotated[bool, typer.Option("--rolled-back", help="You undid it: forget it, so apply runs it "
                                                                    "again.")] = False,
    force: Annotated[bool, typer.Option("--force", help="With --applied: record it even though the database "
                                                        "does not hold what the file leaves behind.")] = False,
    dsn: DsnOption = None,
    migrations_dir: MigrationsDirOption = DEFAULT_MIGRATIONS_DIR,
) -> None:
    """Clear a failed migration after a human fixed the database.

    --applied first checks the file's objects: each index it builds exists and is valid (an
    INVALID index left by an interrupted concurrent build is not applied), each constraint
    is validated, each column it makes NOT NULL is; exit 3 otherwise. Example:

        veza-schema resolve 20261125120000 --rolled-back
    """
    from veza_schema.errors import UsageError
    from veza_schema.migrations import runner

    if applied == rolled_back:
        raise UsageError("give exactly one of --applied or --rolled-back")
    if force and not applied:
        raise UsageError("--force goes with --applied")
    target = _target(dsn)
    outcome = runner.resolve(target, _files(migrations_dir), version, applied=applied, force=force)
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
