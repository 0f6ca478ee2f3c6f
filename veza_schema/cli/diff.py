"""diff (drift of a live database, or review of two schema/ versions) and inspect (database -> YAML)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from veza_schema.cli.common import (
    DEFAULT_SCHEMA_DIR,
    DsnOption,
    SchemaDirOption,
    ShadowDsnOption,
    check_choice,
    console,
)

if TYPE_CHECKING:
    from veza_schema.drift.compare import DriftReport
    from veza_schema.drift.review import Review

DRIFT_FORMATS = ("text", "json", "sql")
REVIEW_FORMATS = ("text", "json", "sql", "github")

ExcludeOption = Annotated[
    list[str] | None,
    typer.Option("--exclude", help="Glob (fnmatch) of object names that are never drift; repeatable. Columns "
                                   "match as table.column.", show_default=False),
]


def register(app: typer.Typer) -> None:
    app.command("diff")(diff)
    app.command("inspect")(inspect)


def diff(
    dsn: DsnOption = None,
    schema_dir: SchemaDirOption = DEFAULT_SCHEMA_DIR,
    output_format: Annotated[str, typer.Option("--format", help="text, json or sql (github too with "
                                                                "--from/--to).")] = "text",
    exclude: ExcludeOption = None,
    offline: Annotated[bool, typer.Option("--offline", help="No shadow database: compare expression texts "
                                                            "after sqlglot normalization.")] = False,
    shadow_dsn: ShadowDsnOption = None,
    from_ref: Annotated[str | None, typer.Option("--from", help="Review mode: the old schema/ (git ref or "
                                                 "directory); no database.", show_default=False)] = None,
    to_ref: Annotated[str | None, typer.Option("--to", help="Review mode: the new schema/ (git ref or "
                                               "directory). Default: --schema-dir.", show_default=False)] = None,
) -> None:
    """Show what the database lacks, has in excess or has differently against schema/.

    Exit 0: no drift; 1: drift; 2: bad input; 3: database error. With --from/--to, show
    what a change to schema/ means in SQL instead, without a database (exit 0). Examples:

        veza-schema diff --dsn postgresql://veza@db.internal/veza --format sql

        veza-schema diff --from origin/main --to HEAD --format github
    """
    from veza_schema.errors import UsageError

    if from_ref is not None or to_ref is not None:
        if from_ref is None:
            raise UsageError("--to needs --from")
        check_choice(output_format, REVIEW_FORMATS, "--format")
        _review(from_ref, to_ref or str(schema_dir), schema_dir, output_format, exclude or [])
        return
    check_choice(output_format, DRIFT_FORMATS, "--format")
    report = _drift(dsn, schema_dir, offline, shadow_dsn, exclude or [])
    _print_drift(report, schema_dir, output_format, shadow_dsn)
    raise typer.Exit(1 if report.drift else 0)


def _drift(dsn: str | None, schema_dir: Path, offline: bool, shadow_dsn: str | None,
           exclude: list[str]) -> DriftReport:
    from veza_schema.db.dsn import connect, resolve_dsn
    from veza_schema.drift.compare import detect_drift
    from veza_schema.drift.shadow_cache import cache_directory
    from veza_schema.yaml.loader import load_schema

    desired = load_schema(schema_dir)
    target = resolve_dsn(dsn)
    conn = connect(target)
    try:
        return detect_drift(conn, desired, offline=offline, shadow_dsn=shadow_dsn, exclude=exclude,
                            database=target.display, shadow_cache=cache_directory())
    finally:
        conn.close()


def _print_drift(report: DriftReport, schema_dir: Path, output_format: str, shadow_dsn: str | None) -> None:
    from veza_schema.diff.changes import describe
    from veza_schema.drift.reconcile import reconcile
    from veza_schema.drift.report import changes_tree, count_items, drift_document

    out = console()
    if output_format == "json":
        print(json.dumps(drift_document(report), indent=2, ensure_ascii=False))
        return
    if output_format == "sql":
        plan = reconcile(report.changes, report.current, report.desired)
        print(f"-- veza-schema diff: SQL reconciling {report.database} with {schema_dir}/ "
              f"({len(report.changes)} change(s), {report.mode} comparison)")
        for change, reason in plan.refused:
            print(f"-- not reconciled: {describe(change)}: {reason}")
        for change, reason in plan.unsafe:
            print(f"-- WARNING: included, but not online-safe (review before running): {describe(change)}: "
                  f"{reason}")
        if not plan.statements:
            print("-- no drift" if not report.drift else "-- nothing to run")
        for statement in plan.statements:
            print(statement.rstrip("\n"))
        return
    how = ("offline: expression texts compared after sqlglot normalization, no shadow database"
           if report.mode == "offline" else f"through a shadow database on {report.shadow}")
    out.print(f"Database: {report.database}", markup=False)
    out.print(f"Compared with {schema_dir}/ ({how}).", markup=False)
    for warning in report.warnings:
        out.print(f"[dim]note: {warning}[/]", highlight=False)
    if not report.drift:
        out.print("[green]No drift.[/]")
        return
    views = set(report.current.views) | set(report.desired.views)
    out.print(changes_tree("[bold]Drift[/] [dim](+ missing from the database, - only in the database, "
                           "~ different)[/]", report.changes, report.modules, views), soft_wrap=False)
    counts = count_items(report.changes)
    out.print(f"[yellow]{sum(counts.values())} difference(s)[/]: {counts['missing']} missing, {counts['extra']} "
              f"extra, {counts['different']} different. `--format sql` prints the SQL that reconciles them.")


def _review(from_ref: str, to_ref: str, schema_dir: Path, output_format: str, exclude: list[str]) -> None:
    from veza_schema.drift.review import github_markdown, review, review_document

    result = review(from_ref, to_ref, schema_dir, exclude)
    if output_format == "json":
        print(json.dumps(review_document(result), indent=2, ensure_ascii=False))
    elif output_format == "github":
        print(github_markdown(result), end="")
    elif output_format == "sql":
        _print_review_sql(result)
    else:
        _print_review_text(result)


def _print_review_sql(result: Review) -> None:
    from veza_schema.errors import UsageError

    if result.sql is None:
        raise UsageError(result.sql_error or "no SQL")
    print(f"-- veza-schema diff: {result.from_label} -> {result.to_label} ({len(result.changes)} change(s))")
    for refused in result.refused:
        print(f"-- refused by the planner: {refused}")
    for statement in result.sql:
        print(statement.rstrip("\n"))


def _print_review_text(result: Review) -> None:
    from rich.markup import escape
    from rich.tree import Tree

    out = console()
    if not result.changes:
        out.print(f"No schema changes from {result.from_label} to {result.to_label}.", markup=False)
        return
    tree = Tree(f"[bold]Schema changes[/] {escape(result.from_label)} -> {escape(result.to_label)}")
    styles = {"+": "green", "-": "red", "~": "yellow", ">": "cyan"}
    for module, groups in result.grouped().items():
        branch = tree.add(f"[bold]module {escape(module)}[/]")
        for title, found in groups.items():
            leaf = branch.add(escape(title))
            for item in found:
                leaf.add(f"[{styles.get(item.sign, 'white')}]{escape(item.sign + ' ' + item.description)}[/]")
    out.print(tree, soft_wrap=False)
    for refused in result.refused:
        out.print(f"[yellow]refused by the planner:[/] {escape(refused)}")
    if result.sql is None:
        out.print(f"[yellow]SQL not available:[/] {escape(result.sql_error or '')}")
        return
    out.print(f"SQL the migration would contain ({len(result.sql)} statement(s)):")
    out.print("\n".join(s.rstrip("\n") for s in result.sql), markup=False, highlight=False)


def inspect(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the module YAML files to.")],
    dsn: DsnOption = None,
    modules: Annotated[Path | None, typer.Option("--modules", help="YAML file mapping each module name to a "
                                                                   "list of its tables.", show_default=False)] = None,
    prefix_modules: Annotated[bool, typer.Option("--prefix-modules", help="Module of a table: its name's first "
                                                                          "word before '_'.")] = False,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="Glob (fnmatch) of object names to leave "
                                                      "out; repeatable.", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite YAML files already in --out.")] = False,
) -> None:
    """Write schema/-style YAML, one file per module, from a live database.

    Unassigned tables go to other.yaml. Example:

        veza-schema inspect --dsn postgresql://veza@db.internal/veza --out schema --prefix-modules
    """
    from veza_schema.db.dsn import connect, resolve_dsn
    from veza_schema.db.introspect import IntrospectionStats, introspect
    from veza_schema.drift.compare import without_excluded, without_managed
    from veza_schema.errors import UsageError
    from veza_schema.yaml.writer import assign_modules, read_module_mapping, write_modules

    mapping = None
    if modules is not None:
        try:
            mapping = read_module_mapping(modules.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"--modules {modules}: {exc}") from exc
    existing = sorted(out_dir.glob("*.yaml")) if out_dir.is_dir() else []
    if existing and not force:
        raise UsageError(f"{out_dir} already holds {len(existing)} YAML file(s); use --force to overwrite")
    target = resolve_dsn(dsn)
    conn = connect(target)
    stats = IntrospectionStats()
    try:
        schema = without_excluded(without_managed(introspect(conn, stats=stats)), exclude or [])
    finally:
        conn.close()
    texts = write_modules(schema, assign_modules(schema, mapping, prefix_modules))
    out_dir.mkdir(parents=True, exist_ok=True)
    for module, text in texts.items():
        (out_dir / f"{module}.yaml").write_text(text, encoding="utf-8")
    report = console()
    for warning in stats.warnings:
        report.print(f"[yellow]not in the YAML:[/] {warning}", highlight=False)
    report.print(f"Wrote {len(texts)} module file(s) to {out_dir}: {len(schema.tables)} tables, "
                 f"{len(schema.indexes)} indexes, {len(schema.enums)} enums, {len(schema.functions)} functions, "
                 f"{len(schema.views)} views ({stats.queries} catalog queries).", markup=False)
